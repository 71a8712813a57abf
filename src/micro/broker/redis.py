"""The Redis broker (redis.asyncio): fan-out by Redis pub/sub, queue groups emulated.

Plain subscribers each hold a pub/sub connection on the channel
``<prefix>:<namespace>:<topic>``. Redis has no queue groups, so they are built from a
list per group: a publish (one Lua script, so atomic) ``PUBLISH``es to the channel and
``RPUSH``es the message onto the list of every group of the topic that has a live
member; the members ``BLPOP`` that list, so each message goes to exactly one of them::

    <channel>:groups              set of the topic's queue groups
    <channel>:g:<group>:members   sorted set: member id -> expiry (ms), refreshed while alive
    <channel>:g:<group>:list      the group's waiting messages (capped, expiring)

A member that dies without leaving counts as live until its entry expires (``member_ttl``
seconds); meanwhile the others take every message. A group whose last member leaves is
dropped with its waiting messages, so a member that joins later never sees an older
message. The scripts name keys they compute: one Redis, not a cluster.

redis is imported only here (the ``redis`` extra); :meth:`RedisBroker._failure` is the one
place its exceptions become ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from micro import errors
from micro.broker._backend import MAX_PENDING, FeedSubscriber, check_queue, check_topic
from micro.broker.base import Broker, Message, Subscriber
from micro.store._backend import redact

try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the redis broker needs redis: pip install 'micro-python[redis]'") from exc

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["RedisBroker"]

log = logging.getLogger("micro.broker")

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_.-]{1,64})*")

# KEYS[1] channel, KEYS[2] groups set; ARGV: payload, now ms, list ttl ms, list cap.
_PUBLISH = """
redis.call('PUBLISH', KEYS[1], ARGV[1])
for _, g in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local base = KEYS[1] .. ':g:' .. g
    redis.call('ZREMRANGEBYSCORE', base .. ':members', '-inf', ARGV[2])
    if redis.call('ZCARD', base .. ':members') > 0 then
        redis.call('RPUSH', base .. ':list', ARGV[1])
        redis.call('LTRIM', base .. ':list', -tonumber(ARGV[4]), -1)
        redis.call('PEXPIRE', base .. ':list', ARGV[3])
    else
        redis.call('SREM', KEYS[2], g)
        redis.call('DEL', base .. ':list')
    end
end
"""

# KEYS[1] channel, KEYS[2] groups set; ARGV: group, member, now ms, expiry ms, ttl ms.
_JOIN = """
local base = KEYS[1] .. ':g:' .. ARGV[1]
redis.call('ZREMRANGEBYSCORE', base .. ':members', '-inf', ARGV[3])
if redis.call('ZCARD', base .. ':members') == 0 then
    redis.call('DEL', base .. ':list')
end
redis.call('ZADD', base .. ':members', ARGV[4], ARGV[2])
redis.call('PEXPIRE', base .. ':members', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
"""

# KEYS[1] channel, KEYS[2] groups set; ARGV: group, member, now ms.
_LEAVE = """
local base = KEYS[1] .. ':g:' .. ARGV[1]
redis.call('ZREM', base .. ':members', ARGV[2])
redis.call('ZREMRANGEBYSCORE', base .. ':members', '-inf', ARGV[3])
if redis.call('ZCARD', base .. ':members') == 0 then
    redis.call('DEL', base .. ':list', base .. ':members')
    redis.call('SREM', KEYS[2], ARGV[1])
end
"""


class _Wire(msgspec.Struct, array_like=True, omit_defaults=True):
    body: bytes = b""
    header: dict[str, str] = {}


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Wire).decode


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _RedisSubscriber(FeedSubscriber):
    def __init__(
        self, broker: RedisBroker, channel: str, topic: str, queue: str | None, limit: int
    ) -> None:
        super().__init__(topic, queue, limit=limit)
        self._broker = broker
        self._channel = channel
        self._member = uuid.uuid4().hex
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self._blocking: Any = None
        self._leaving = False

    def _push(self, data: bytes) -> None:
        try:
            wire = _decode(data)
        except msgspec.DecodeError:
            log.warning("dropped an undecodable message on %s", self._channel)
            return
        self.feed.push(Message(wire.header, wire.body))

    async def _open(self) -> None:
        b = self._broker
        try:
            if self.queue is None:
                self._pubsub = b._redis.pubsub()
                await self._pubsub.subscribe(self._channel)
                # Wait for Redis's confirmation: from then on the subscription is in place.
                async with asyncio.timeout(b._timeout):
                    while True:
                        msg = await self._pubsub.get_message(timeout=b._timeout)
                        if msg is not None and msg["type"] == "subscribe":
                            break
                self._tasks.append(asyncio.create_task(self._read_channel()))
            else:
                await self._join()
                self._tasks.append(asyncio.create_task(self._read_group()))
                self._tasks.append(asyncio.create_task(self._heartbeat()))
        except Exception as exc:
            await self._release()
            raise b._failure(exc) from None
        b._subscribers.add(self)

    async def _join(self) -> None:
        b = self._broker
        now = _now_ms()
        ttl = int(b._member_ttl * 1000)
        assert self.queue is not None
        await b._redis.eval(
            _JOIN, 2, self._channel, f"{self._channel}:groups",
            self.queue, self._member, now, now + ttl, ttl,
        )  # fmt: skip

    async def _read_channel(self) -> None:
        try:
            while True:
                msg = await self._pubsub.get_message(timeout=None)
                if msg is not None and msg["type"] == "message":
                    self._push(msg["data"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.feed.end(self._broker._failure(exc))

    async def _read_group(self) -> None:
        b = self._broker
        key = f"{self._channel}:g:{self.queue}:list"
        # A connection of its own, closed on stop: a BLPOP left waiting on a pooled
        # connection would go on taking the group's messages for nobody.
        conn: Any = b._blocking_client()
        self._blocking = conn
        try:
            while not self._leaving:
                got = await conn.blpop([key], timeout=b._poll)
                if got is not None:
                    self._push(got[1])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._leaving:
                self.feed.end(b._failure(exc))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.aclose())

    async def _heartbeat(self) -> None:
        b = self._broker
        try:
            while True:
                await asyncio.sleep(b._member_ttl / 3)
                await self._join()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the reader sees the same outage and ends the feed
            log.debug("queue heartbeat on %s: %s", self._channel, exc)

    async def _release(self) -> None:
        self._leaving = True
        if self._blocking is not None:
            # redis-py may swallow the cancellation of a waiting BLPOP: drop its socket.
            with contextlib.suppress(Exception):
                await self._blocking.connection.disconnect()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

    async def _close(self) -> None:
        b = self._broker
        b._subscribers.discard(self)
        await self._release()
        if self.queue is not None:
            with contextlib.suppress(Exception):
                await b._redis.eval(
                    _LEAVE, 2, self._channel, f"{self._channel}:groups",
                    self.queue, self._member, _now_ms(),
                )  # fmt: skip


class RedisBroker(Broker):
    """Publish/subscribe through the Redis at ``address`` (``redis://host:6379/0``).

    ``prefix`` starts every channel and key (give each broker sharing a Redis its own);
    ``member_ttl`` is how long a queue member that vanished without leaving still counts;
    ``group_backlog`` caps a queue group's waiting messages.
    """

    name = "redis"

    def __init__(
        self,
        address: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "micro",
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
        member_ttl: float = 30.0,
        group_backlog: int = MAX_PENDING,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"invalid Redis key prefix {prefix!r}: letters, digits, '_', '.', '-', ':'"
            )
        self.address = address
        self.prefix = prefix
        self._timeout = timeout
        self._member_ttl = member_ttl
        self._group_backlog = group_backlog
        self._max_pending = max_pending
        self._poll = 5.0  # BLPOP's own timeout: below the socket timeout
        self._redis: Any = aioredis.Redis.from_url(
            address,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            client_name=f"micro-broker/{prefix}",
        )
        self._connect_timeout = connect_timeout
        self._publish_sha = ""
        self._subscribers: set[_RedisSubscriber] = set()

    def _blocking_client(self) -> Any:
        return aioredis.Redis.from_url(
            self.address,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._poll + self._timeout,
            single_connection_client=True,
            client_name=f"micro-broker/{self.prefix}",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisBroker:
        """The server's broker, at ``MICRO_BROKER_ADDRESS``."""
        address = settings.broker_address
        if not address or not address.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "the redis broker needs MICRO_BROKER_ADDRESS=redis://host:6379/0"
                + (f" (got {redact(address)!r})" if address else "")
            )
        return cls(address)

    def __repr__(self) -> str:
        return f"RedisBroker({redact(self.address)!r}, prefix={self.prefix!r})"

    def channel(self, topic: str, namespace: str) -> str:
        """The pub/sub channel of ``topic`` in ``namespace`` (``:`` is in neither)."""
        return f"{self.prefix}:{namespace.replace(':', '%3A')}:{topic}"

    def _failure(self, exc: BaseException) -> errors.MicroError:
        """The one place a redis or socket error becomes ours."""
        if isinstance(exc, errors.MicroError):
            return exc
        where = f"Redis broker at {redact(self.address)}"
        if isinstance(exc, redis_errors.AuthenticationError):
            return errors.ServiceUnavailable("broker", f"{where} refused our credentials: {exc}")
        if isinstance(exc, redis_errors.ConnectionError | OSError):
            return errors.ServiceUnavailable("broker", f"{where} is unreachable: {exc}")
        if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
            return errors.ServiceUnavailable("broker", f"{where} timed out: {exc or 'timeout'}")
        return errors.InternalServerError("broker", f"{where}: {type(exc).__name__}: {exc}")

    async def publish(self, topic: str, message: Message, *, namespace: str = "micro") -> None:
        check_topic(topic)
        channel = self.channel(topic, namespace)
        payload = _encode(_Wire(message.body, message.header))
        args = (
            2, channel, f"{channel}:groups",
            payload, _now_ms(), int(self._member_ttl * 1000), self._group_backlog,
        )  # fmt: skip
        try:
            if self._publish_sha:
                try:
                    await self._redis.evalsha(self._publish_sha, *args)
                    return
                except redis_errors.NoScriptError:
                    pass
            self._publish_sha = await self._redis.script_load(_PUBLISH)
            await self._redis.evalsha(self._publish_sha, *args)
        except Exception as exc:
            raise self._failure(exc) from None

    def subscribe(
        self, topic: str, *, queue: str | None = None, namespace: str = "micro"
    ) -> Subscriber:
        check_topic(topic)
        return _RedisSubscriber(
            self, self.channel(topic, namespace), topic, check_queue(queue), self._max_pending
        )

    async def close(self) -> None:
        for sub in list(self._subscribers):
            sub.feed.end()
            await sub.stop()
        await self._redis.aclose()
