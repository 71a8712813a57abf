"""The Redis Streams event stream (redis.asyncio): the scale-out stream many servers can share.

Keys, under a prefix (``micro`` by default), with namespace and topic as a hash tag so a
topic's keys stay in one cluster slot::

    <prefix>:{<namespace>:<topic>}:s    the Redis stream; entry id ``<sequence>-0``, fields
                                        i (id), t (timestamp), p (payload), m (metadata JSON)
    <prefix>:{<namespace>:<topic>}:n    the topic's last sequence (INCR): never reused
    <prefix>:topics:<namespace>         set of the namespace's topics

A publish is one Lua script (sequence, XADD with exact ``MAXLEN`` when ``max_events`` is
set, and trimming of events older than ``max_age`` by their timestamp): entry ids are the
sequence, so a sequence offset is an id range and a group's start is ``<seq-1>-0``; a time
offset is a binary search over the event timestamps in Lua (timestamps are taken to grow
with the sequence, as they do unless publishers set them).

A named group is a consumer group (XGROUP CREATE .. MKSTREAM; one that exists resumes);
``group=None`` is a group ``~<uuid>`` destroyed on :meth:`stop`. Each consumer reads with
XREADGROUP (``NOACK`` for ``auto_ack``) and, every ``min(ack_wait / 4, 0.5)`` s, claims
entries of its group idle longer than ``ack_wait`` (XPENDING + XCLAIM in one script, the
delivery count being the attempt). A nack makes the entry idle at once (XCLAIM IDLE
JUSTID), so the next claim takes it. An entry past ``retry_limit`` redeliveries is appended
to ``<topic>.dead`` (metadata ``micro-topic`` / ``micro-sequence`` added) and acked.

redis is imported only here (the ``redis`` extra); its exceptions never reach a caller:
:meth:`RedisStream._failure` is the one place they become ours.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import msgspec

from micro import errors
from micro.events._checks import (
    check_consume,
    check_group,
    check_limit,
    check_namespace,
    check_offset,
    check_payload,
    check_topic,
    offset_time,
)
from micro.events.base import Consumer, Event, Group, Offset, Stream
from micro.store._backend import redact

try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the redis event stream needs redis: pip install 'micro-python[redis]'"
    ) from exc

if TYPE_CHECKING:
    from micro.settings import Settings

from micro.events._redis_consumer import (
    _BACKEND_ERRORS,
    _EPHEMERAL,
    _event,
    _RedisConsumer,
    _seq,
)

__all__ = ["RedisStream"]

log = logging.getLogger("micro.events")

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_.-]{1,64})*")
_encode_metadata = msgspec.json.Encoder().encode

# KEYS: stream, counter. ARGV: id, timestamp, payload, metadata, max_events (0: none),
# oldest timestamp kept (empty: no age limit). Returns the sequence.
_PUBLISH = """
local seq = redis.call('INCR', KEYS[2])
local max = tonumber(ARGV[5])
if max > 0 then
    redis.call('XADD', KEYS[1], 'MAXLEN', max, seq .. '-0',
        'i', ARGV[1], 't', ARGV[2], 'p', ARGV[3], 'm', ARGV[4])
else
    redis.call('XADD', KEYS[1], seq .. '-0',
        'i', ARGV[1], 't', ARGV[2], 'p', ARGV[3], 'm', ARGV[4])
end
if ARGV[6] ~= '' then
    local oldest = tonumber(ARGV[6])
    for _ = 1, 10 do
        local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 100)
        local keep = nil
        for _, entry in ipairs(head) do
            if tonumber(entry[2][4]) >= oldest then keep = entry[1] break end
        end
        if keep then
            redis.call('XTRIM', KEYS[1], 'MINID', keep)
            break
        end
        if #head == 0 then break end
        local last = head[#head][1]
        local s = tonumber(string.match(last, '^(%d+)'))
        redis.call('XTRIM', KEYS[1], 'MINID', (s + 1) .. '-0')
    end
end
return seq
"""

# KEYS: stream. ARGV: time. The first sequence whose timestamp is >= time (by binary search),
# or the last sequence + 1.
_FIND_TIME = """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local at = tonumber(ARGV[1])
local lo = tonumber(string.match(first[1][1], '^(%d+)'))
local hi = tonumber(string.match(last[1][1], '^(%d+)')) + 1
while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('XRANGE', KEYS[1], mid .. '-0', '+', 'COUNT', 1)
    local s = tonumber(string.match(e[1][1], '^(%d+)'))
    if tonumber(e[1][2][4]) < at then lo = s + 1 else hi = mid end
end
return lo
"""

# KEYS: stream. ARGV: group, consumer, min idle ms, count. Claims the entries idle that long:
# a list of {id, delivery count, fields} (fields false when the entry was trimmed: acked).
_CLAIM = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
local out = {}
for _, p in ipairs(pending) do
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], p[1])
    if #claimed > 0 then
        if claimed[1] and type(claimed[1]) == 'table' and claimed[1][2] then
            table.insert(out, {p[1], p[4] + 1, claimed[1][2]})
        else
            redis.call('XACK', KEYS[1], ARGV[1], p[1])
        end
    end
end
return out
"""


def _refused(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError) or "Error 111 " in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class RedisStream(Stream):
    """Events in Redis Streams at ``address`` (``redis://[:password@]host:6379/0``).

    ``prefix`` starts every key (give each platform sharing a Redis its own);
    ``max_age`` (seconds, by event timestamp) and ``max_events`` bound each topic;
    ``batch`` is how many entries a consumer reads at once; ``connect_timeout`` and
    ``timeout`` bound a connection attempt and a command.
    """

    name = "redis"

    def __init__(
        self,
        address: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "micro",
        max_age: float | None = None,
        max_events: int | None = None,
        batch: int = 256,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"invalid Redis key prefix {prefix!r}: letters, digits, '_', '.', '-', ':'"
            )
        self.address = address
        self.prefix = prefix
        self.max_age = max_age
        self.max_events = max_events
        self._batch = batch
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._redis: Any = aioredis.Redis.from_url(
            address,
            socket_connect_timeout=connect_timeout,
            socket_timeout=None,  # reads block; each command is bounded below
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=2),
            client_name=f"micro-events/{prefix}",
        )
        self._scripts: dict[str, Any] = {
            "publish": self._redis.register_script(_PUBLISH),
            "find": self._redis.register_script(_FIND_TIME),
            "claim": self._redis.register_script(_CLAIM),
        }
        self._closed = False
        self._known: set[tuple[str, str]] = set()
        self._consumers: set[_RedisConsumer] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStream:
        """The server's stream, at ``MICRO_EVENTS_ADDRESS`` (prefix ``MICRO_PREFIX``)."""
        address = settings.events_address
        if not address or not address.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "the redis event stream needs MICRO_EVENTS_ADDRESS=redis://host:6379/0"
                + (f" (got {redact(address)!r})" if address else "")
            )
        return cls(address, prefix=settings.backend_prefix)

    def __repr__(self) -> str:
        return f"RedisStream({redact(self.address)!r}, prefix={self.prefix!r})"

    # ------------------------------------------------------------------ names and errors

    def _key(self, namespace: str, topic: str) -> str:
        return f"{self.prefix}:{{{namespace}:{topic}}}:"

    def _failure(self, exc: BaseException) -> errors.MicroError:
        """The one place a redis or socket error becomes ours."""
        if isinstance(exc, errors.MicroError):
            return exc
        where = f"Redis events at {redact(self.address)}"
        if isinstance(exc, redis_errors.AuthenticationError):
            return errors.ServiceUnavailable("events", f"{where} refused our credentials: {exc}")
        if isinstance(exc, redis_errors.BusyLoadingError):
            return errors.ServiceUnavailable("events", f"{where} is loading its data: {exc}")
        if isinstance(exc, redis_errors.ConnectionError | OSError):
            reason = "connection refused" if _refused(exc) else str(exc)
            return errors.ServiceUnavailable("events", f"{where} is not reachable: {reason}")
        if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
            return errors.ServiceUnavailable("events", f"{where} did not answer in time")
        if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(
            ("OOM", "READONLY", "MASTERDOWN", "LOADING")
        ):
            return errors.ServiceUnavailable("events", f"{where} cannot take writes now: {exc}")
        return errors.InternalServerError("events", f"{where} failed: {exc}")

    async def _do(self, aw: Awaitable[Any]) -> Any:
        if self._closed:
            raise errors.ServiceUnavailable("events", f"{self!r} is closed")
        try:
            async with asyncio.timeout(self._timeout):
                return await aw
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc

    async def close(self) -> None:
        """Stop every consumer and close every connection."""
        for consumer in list(self._consumers):
            await consumer.stop()
        self._closed = True
        with contextlib.suppress(*_BACKEND_ERRORS):
            await self._redis.aclose()

    # ------------------------------------------------------------------ the stream

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        metadata: dict[str, str] | None = None,
        timestamp: float | None = None,
        namespace: str = "micro",
    ) -> Event:
        check_topic(topic)
        check_namespace(namespace)
        check_payload(payload)
        return await self._append(
            namespace,
            topic,
            bytes(payload),
            dict(metadata or {}),
            time.time() if timestamp is None else float(timestamp),
        )

    async def _append(
        self, namespace: str, topic: str, payload: bytes, metadata: dict[str, str], ts: float
    ) -> Event:
        event_id = str(uuid.uuid4())
        base = self._key(namespace, topic)
        oldest = repr(time.time() - self.max_age) if self.max_age else ""
        args: builtins.list[Any] = [
            event_id,
            repr(ts),
            payload,
            _encode_metadata(metadata) if metadata else b"",
            self.max_events or 0,
            oldest,
        ]
        seq = await self._do(self._scripts["publish"](keys=[base + "s", base + "n"], args=args))
        if (namespace, topic) not in self._known:
            await self._do(self._redis.sadd(f"{self.prefix}:topics:{namespace}", topic))
            self._known.add((namespace, topic))
        return Event(
            id=event_id,
            topic=topic,
            sequence=int(seq),
            timestamp=ts,
            payload=payload,
            metadata=metadata,
        )

    def consume(
        self,
        topic: str,
        *,
        group: str | None = None,
        offset: Offset | None = None,
        auto_ack: bool = True,
        ack_wait: float = 30.0,
        retry_limit: int | None = None,
        namespace: str = "micro",
    ) -> Consumer:
        check_consume(topic, group, offset, ack_wait, retry_limit, namespace)
        if self._closed:
            raise errors.ServiceUnavailable("events", f"{self!r} is closed")
        consumer = _RedisConsumer(
            self, namespace, topic, group, offset, auto_ack, ack_wait, retry_limit
        )
        self._consumers.add(consumer)
        return consumer

    async def _start(self, key: str, offset: Offset) -> int:
        """The first sequence at ``offset`` (0 when the topic is empty)."""
        if isinstance(offset, int):
            return max(offset, 1)
        found = await self._do(self._scripts["find"](keys=[key], args=[repr(offset_time(offset))]))
        return int(found)

    async def read(
        self,
        topic: str,
        *,
        limit: int = 250,
        offset: Offset | None = None,
        namespace: str = "micro",
    ) -> builtins.list[Event]:
        check_topic(topic)
        check_namespace(namespace)
        check_limit(limit)
        check_offset(offset)
        key = self._key(namespace, topic) + "s"
        start = "-"
        if offset is not None:
            first = await self._start(key, offset)
            if not first:
                return []
            start = f"{first}-0"
        entries = await self._do(self._redis.xrange(key, start, "+", count=limit or None))
        events = [_event(topic, entry_id, fields) for entry_id, fields in entries]
        if self.max_age:
            oldest = time.time() - self.max_age
            events = [e for e in events if e.timestamp >= oldest]
        return events

    async def topics(self, *, namespace: str = "micro") -> builtins.list[str]:
        check_namespace(namespace)
        names = sorted(
            m.decode()
            for m in await self._do(self._redis.smembers(f"{self.prefix}:topics:{namespace}"))
        )
        if not names:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.xlen(self._key(namespace, name) + "s")
        counts = await self._do(pipe.execute())
        return [name for name, count in zip(names, counts, strict=True) if count]

    async def groups(self, topic: str, *, namespace: str = "micro") -> builtins.list[Group]:
        check_topic(topic)
        check_namespace(namespace)
        base = self._key(namespace, topic)
        if not await self._do(self._redis.exists(base + "s")):
            return []
        infos = await self._do(self._redis.xinfo_groups(base + "s"))
        last = int(await self._do(self._redis.get(base + "n")) or 0)
        found = []
        for info in infos:
            name = info["name"].decode()
            if name.startswith(_EPHEMERAL):
                continue
            delivered = _seq(info["last-delivered-id"])
            # Redis counts the lag itself unless entries were trimmed: then the sequences do.
            lag = info.get("lag")
            lag = max(last - delivered, 0) if lag is None else int(lag)
            found.append(Group(name, delivered + 1, int(info["pending"]), lag))
        return sorted(found, key=lambda g: g.group)

    async def reset(
        self, topic: str, group: str, *, offset: Offset | None, namespace: str = "micro"
    ) -> Group:
        check_topic(topic)
        check_group(group)
        check_namespace(namespace)
        check_offset(offset)
        key = self._key(namespace, topic) + "s"
        first = 0 if offset is None else await self._start(key, offset)
        start = "$" if not first else (f"{first - 1}-0" if first > 1 else "0")
        try:
            await self._do(self._redis.xgroup_setid(key, group, start))
        except errors.InternalServerError as exc:
            if "NOGROUP" not in exc.detail:
                raise
            await self._do(self._redis.xgroup_create(key, group, start, mkstream=True))
        # Its unacked deliveries are forgotten: acked here, a thousand at a time.
        for _ in range(100_000):  # bounded: a member may still claim while this runs
            pending = await self._do(self._redis.xpending_range(key, group, "-", "+", 1000))
            if not pending:
                break
            await self._do(self._redis.xack(key, group, *(p["message_id"] for p in pending)))
        [moved] = [g for g in await self.groups(topic, namespace=namespace) if g.group == group]
        return moved

    async def delete_all(self) -> int:
        """Delete every key of this prefix (all namespaces, topics, groups); how many."""
        deleted = 0
        cursor = 0
        while True:
            cursor, keys = await self._do(
                self._redis.scan(cursor, match=f"{self.prefix}:*", count=1000)
            )
            if keys:
                deleted += await self._do(self._redis.delete(*keys))
            if not cursor:
                break
        self._known.clear()
        return deleted
