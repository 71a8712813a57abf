"""The consumer of :class:`~micro.events.redis.RedisStream`: XREADGROUP into a bounded queue,
with entries idle past their ack wait claimed back (XAUTOCLAIM) and redeliveries past the
retry limit moved to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

import msgspec

from micro import errors
from micro.events.base import DEAD_LETTER_SUFFIX, Consumer, Delivery, Event, Offset

try:
    import redis.exceptions as redis_errors
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the redis event stream needs redis: pip install 'micro-python[redis]'"
    ) from exc

if TYPE_CHECKING:
    from micro.events.redis import RedisStream


log = logging.getLogger("micro.events")

_decode_metadata = msgspec.json.Decoder(dict[str, str]).decode

_BACKEND_ERRORS = (redis_errors.RedisError, OSError, TimeoutError)
_EPHEMERAL: Final = "~"


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
