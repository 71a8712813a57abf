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
from typing import TYPE_CHECKING, Any, Final

import msgspec

from micro import errors
from micro.events._checks import (
    check_consume,
    check_limit,
    check_namespace,
    check_offset,
    check_payload,
    check_topic,
    offset_time,
)
from micro.events.base import DEAD_LETTER_SUFFIX, Consumer, Delivery, Event, Offset, Stream
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

__all__ = ["RedisStream"]

log = logging.getLogger("micro.events")

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_.-]{1,64})*")
_BACKEND_ERRORS = (redis_errors.RedisError, OSError, TimeoutError)
_EPHEMERAL: Final = "~"
_encode_metadata = msgspec.json.Encoder().encode
_decode_metadata = msgspec.json.Decoder(dict[str, str]).decode

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


def _seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


def _event(topic: str, entry_id: bytes, fields: Any) -> Event:
    if isinstance(fields, list):  # from a script: a flat list
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    meta = fields.get(b"m")
    return Event(
        id=fields[b"i"].decode(),
        topic=topic,
        sequence=_seq(entry_id),
        timestamp=float(fields[b"t"]),
        payload=fields[b"p"],
        metadata=_decode_metadata(meta) if meta else {},
    )


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


_STOP: Final = object()


class _RedisConsumer(Consumer):
    """One member of a consumer group; a task reads and claims into a queue
    :meth:`next` takes from."""

    def __init__(
        self,
        stream: RedisStream,
        namespace: str,
        topic: str,
        group: str | None,
        offset: Offset | None,
        auto_ack: bool,
        ack_wait: float,
        retry_limit: int | None,
    ) -> None:
        self._stream = stream
        self._ns = namespace
        self._topic = topic
        self._key = stream._key(namespace, topic) + "s"
        self._ephemeral = group is None
        self._group = group if group is not None else f"{_EPHEMERAL}{uuid.uuid4().hex}"
        self._name = uuid.uuid4().hex
        self._offset = offset
        self._auto_ack = auto_ack
        self._ack_wait = ack_wait
        self._idle_ms = max(int(ack_wait * 1000), 1)
        self._retry_limit = retry_limit
        self._interval = min(max(ack_wait / 4, 0.01), 0.5)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(stream._batch, 1))
        self._stopped = False
        self._ready = False
        self._claim_now = asyncio.Event()
        self._pump = asyncio.get_running_loop().create_task(self._run())

    async def next(self) -> Delivery:
        if self._stopped:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _STOP:
            self._queue.put_nowait(_STOP)
            raise StopAsyncIteration
        if isinstance(item, errors.MicroError):
            raise item
        event, entry_id, attempt = item
        if self._auto_ack:
            return Delivery(event, attempt, _done)
        state = [False]

        async def ack(success: bool) -> None:
            if state[0]:
                return
            state[0] = True
            await self._settle(event, entry_id, attempt, success)

        return Delivery(event, attempt, ack)

    async def _settle(self, event: Event, entry_id: bytes, attempt: int, success: bool) -> None:
        redis = self._stream._redis
        if success:
            await self._stream._do(redis.xack(self._key, self._group, entry_id))
        elif self._retry_limit is not None and attempt >= self._retry_limit + 1:
            await self._bury(event, entry_id)
        else:
            # idle at once: the next claim (by any member of the group) takes it
            await self._stream._do(
                redis.xclaim(
                    self._key,
                    self._group,
                    self._name,
                    0,
                    [entry_id],
                    idle=self._idle_ms * 2 + 1000,
                    justid=True,
                )
            )
            self._claim_now.set()

    async def _bury(self, event: Event, entry_id: bytes) -> None:
        meta = {**event.metadata, "micro-topic": event.topic, "micro-sequence": str(event.sequence)}
        await self._stream._append(
            self._ns, event.topic + DEAD_LETTER_SUFFIX, event.payload, meta, time.time()
        )
        await self._stream._do(self._stream._redis.xack(self._key, self._group, entry_id))

    async def _setup(self) -> None:
        stream = self._stream
        if self._offset is None:
            start = "$"
        else:
            first = await stream._start(self._key, self._offset)
            start = "$" if not first else (f"{first - 1}-0" if first > 1 else "0")
        try:
            await stream._do(
                stream._redis.xgroup_create(self._key, self._group, start, mkstream=True)
            )
        except errors.InternalServerError as exc:
            if "BUSYGROUP" not in exc.detail:  # the group exists: it resumes
                raise
        self._ready = True

    async def _claim(self) -> None:
        stream = self._stream
        claimed = await stream._do(
            stream._scripts["claim"](
                keys=[self._key], args=[self._group, self._name, self._idle_ms, stream._batch]
            )
        )
        for entry_id, count, fields in claimed:
            event = _event(self._topic, entry_id, fields)
            attempt = int(count)
            if self._retry_limit is not None and attempt > self._retry_limit + 1:
                await self._bury(event, entry_id)  # its last delivery ran out of ack wait
                continue
            await self._queue.put((event, entry_id, attempt))

    async def _run(self) -> None:
        """Read for ever: set up, claim due entries, read new ones; retry with backoff
        while Redis is away (the error reaches :meth:`next` when it persists)."""
        stream = self._stream
        redis = stream._redis
        delay = 0.05
        failing_since: float | None = None
        ever_worked = False
        next_claim = 0.0
        while not self._stopped:
            try:
                if not self._ready:
                    await self._setup()
                now = time.monotonic()
                if not self._auto_ack and (now >= next_claim or self._claim_now.is_set()):
                    self._claim_now.clear()
                    await self._claim()
                    next_claim = time.monotonic() + self._interval
                block = self._interval if not self._auto_ack else 1.0
                async with asyncio.timeout(block + stream._timeout):
                    got = await redis.xreadgroup(
                        self._group,
                        self._name,
                        {self._key: ">"},
                        count=stream._batch,
                        block=max(int(block * 1000), 1),
                        noack=self._auto_ack,
                    )
                ever_worked, failing_since, delay = True, None, 0.05
                for _, entries in got or ():
                    for entry_id, fields in entries:
                        if not fields:  # trimmed meanwhile
                            continue
                        await self._queue.put((_event(self._topic, entry_id, fields), entry_id, 1))
            except asyncio.CancelledError:
                raise
            except (*_BACKEND_ERRORS, errors.MicroError) as exc:
                failure = stream._failure(exc)
                if "NOGROUP" in str(exc):
                    self._ready = False  # the stream or group was deleted: make it again
                now = time.monotonic()
                failing_since = failing_since or now
                if not ever_worked or now - failing_since >= stream._connect_timeout:
                    if self._queue.empty():
                        self._queue.put_nowait(failure)
                    failing_since = now
                log.debug("Redis consumer of %s: %s", self._topic, failure.detail)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception as exc:
                log.exception("Redis consumer of %s failed", self._topic)
                await self._queue.put(errors.InternalServerError("events", str(exc)))
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stream._consumers.discard(self)
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_STOP)
        if self._stream._closed or not self._ready:
            return
        redis = self._stream._redis
        with contextlib.suppress(errors.MicroError):
            if self._ephemeral:
                await self._stream._do(redis.xgroup_destroy(self._key, self._group))
            else:
                mine = await self._stream._do(
                    redis.xpending_range(
                        self._key, self._group, "-", "+", 1, consumername=self._name
                    )
                )
                if not mine:
                    await self._stream._do(
                        redis.xgroup_delconsumer(self._key, self._group, self._name)
                    )


async def _done(success: bool) -> None:
    return None
