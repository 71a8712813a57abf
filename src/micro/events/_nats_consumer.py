"""The consumer of :class:`~micro.events.nats.NatsStream`: a JetStream pull consumer whose
task pulls batches into a bounded queue that :meth:`_NatsConsumer.next` reads, with
redelivery past the retry limit moved to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final

from micro import errors
from micro.events.base import DEAD_LETTER_SUFFIX, Consumer, Delivery, Event, Offset

try:
    import nats.errors as nats_errors
    import nats.js.errors as js_errors
    from nats.js import api
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the nats event stream needs nats-py: pip install 'micro-python[nats]'"
    ) from exc

if TYPE_CHECKING:
    from micro.events.nats import NatsStream


log = logging.getLogger("micro.events")

_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_MAX_NAME: Final = 200
_NOT_FOUND: Final = 404


def _token(name: str) -> str:
    """``name`` as one subject token (and part of a stream name), one to one."""
    if all(c in _SAFE for c in name):
        return name
    return "".join(c if c in _SAFE else "".join(f"_{b:02X}" for b in c.encode()) for c in name)


def _untoken(token: str) -> str:
    if "_" not in token:
        return token
    out = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "_":
            out.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            out += token[i].encode()
            i += 1
    return out.decode()


def group_config(durable: str | None, subject: str, ack_wait: float) -> Any:
    """A consumer group's JetStream consumer: explicit acks, no server-side delivery limit
    (dead letters are ours), no cap on unacked events; durable when ``durable`` is named."""
    return api.ConsumerConfig(
        name=durable,
        durable_name=durable,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,
        filter_subject=subject,
        max_ack_pending=-1,
    )


def _short(name: str) -> str:
    """A stream or consumer name of bounded length (file stores use it as a folder)."""
    if len(name) <= _MAX_NAME:
        return name
    return name[: _MAX_NAME - 17] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]


_ID: Final = "Micro-Id"
_TIME: Final = "Micro-Time"
_META: Final = "Micro-Metadata"
_BACKEND_ERRORS = (nats_errors.Error, OSError, TimeoutError, asyncio.TimeoutError)


def _event(topic: str, msg: Any) -> Event:
    headers = msg.headers or {}
    meta = headers.get(_META)
    return Event(
        id=headers.get(_ID, ""),
        topic=topic,
        sequence=msg.metadata.sequence.stream,
        timestamp=float(headers.get(_TIME) or 0.0),
        payload=msg.data,
        metadata=json.loads(meta) if meta else {},
    )


_STOP: Final = object()


class _NatsConsumer(Consumer):
    """A pull consumer; a task pulls batches into a queue :meth:`next` reads."""

    def __init__(
        self,
        stream: NatsStream,
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
        self._group = group
        self._offset = offset
        self._auto_ack = auto_ack
        self._ack_wait = ack_wait
        self._retry_limit = retry_limit
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(stream._batch, 1))
        self._stopped = False
        self._name = ""
        self._stream_name = ""
        self._sub: Any = None
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
        msg = item
        event = _event(self._topic, msg)
        attempt = msg.metadata.num_delivered
        if self._auto_ack:
            await self._settle(msg, event, attempt, True)
            return Delivery(event, attempt, _done)
        state = [False]

        async def ack(success: bool) -> None:
            if state[0]:
                return
            state[0] = True
            await self._settle(msg, event, attempt, success)

        return Delivery(event, attempt, ack)

    async def _settle(self, msg: Any, event: Event, attempt: int, success: bool) -> None:
        try:
            if success:
                await msg.ack()
            elif self._retry_limit is not None and attempt >= self._retry_limit + 1:
                await self._bury(event)
                await msg.ack()
            else:
                await msg.nak()
        except nats_errors.MsgAlreadyAckdError:
            pass
        except _BACKEND_ERRORS as exc:
            raise self._stream._failure(exc) from exc

    async def _bury(self, event: Event) -> None:
        meta = {**event.metadata, "micro-topic": event.topic, "micro-sequence": str(event.sequence)}
        await self._stream._append(
            self._ns, event.topic + DEAD_LETTER_SUFFIX, event.payload, meta, time.time()
        )

    async def _setup(self) -> None:
        stream = self._stream
        name = await stream._ensure(self._ns, self._topic)
        jsm = stream._jsm
        subject = stream._subject(self._ns, self._topic)
        existing = None
        if self._group is not None:
            durable = _short(_token(self._group))
            with contextlib.suppress(js_errors.NotFoundError):
                existing = await jsm.consumer_info(name, durable)
        if existing is not None:
            self._name = existing.name
            if existing.config.ack_wait != self._ack_wait:
                existing.config.ack_wait = self._ack_wait
                with contextlib.suppress(js_errors.APIError):
                    await jsm.add_consumer(name, existing.config)
        else:
            config = group_config(None, subject, self._ack_wait)
            if self._group is not None:
                config.name = config.durable_name = _short(_token(self._group))
            else:
                config.num_replicas = 1
                config.name = f"e{uuid.uuid4().hex}"
                config.inactive_threshold = max(300.0, 4 * self._ack_wait)
                config.mem_storage = True
            offset = self._offset
            if offset is None:
                config.deliver_policy = api.DeliverPolicy.NEW
            else:
                info = await stream._info(name)
                start = None if info is None else await stream._start(name, info, offset)
                if start is None:
                    config.deliver_policy = api.DeliverPolicy.NEW
                else:
                    config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
                    config.opt_start_seq = start
            made = await jsm.add_consumer(name, config)
            self._name = made.name
        self._stream_name = name
        self._sub = await stream._js.pull_subscribe_bind(
            consumer=self._name, stream=name, pending_msgs_limit=-1
        )

    async def _run(self) -> None:
        """Pull for ever: set up, fetch batches, retry with backoff while NATS is away
        (the error reaches :meth:`next` when it persists, and the consumer goes on)."""
        delay = 0.05
        failing_since: float | None = None
        ever_worked = False
        while not self._stopped:
            try:
                if self._sub is None:
                    await self._setup()
                try:
                    msgs = await self._sub.fetch(self._stream._batch, timeout=1.0)
                except (nats_errors.TimeoutError, TimeoutError):
                    msgs = []
                ever_worked, failing_since, delay = True, None, 0.05
                for msg in msgs:
                    attempt = msg.metadata.num_delivered
                    if self._retry_limit is not None and attempt > self._retry_limit + 1:
                        # its last allowed delivery ran out of ack wait: dead now
                        await self._bury(_event(self._topic, msg))
                        with contextlib.suppress(nats_errors.MsgAlreadyAckdError):
                            await msg.ack()
                        continue
                    await self._queue.put(msg)
            except asyncio.CancelledError:
                raise
            except errors.BadRequest as exc:
                await self._queue.put(exc)
                return
            except (*_BACKEND_ERRORS, errors.MicroError) as exc:
                failure = self._stream._failure(exc)
                now = time.monotonic()
                failing_since = failing_since or now
                if isinstance(exc, js_errors.NotFoundError) or "consumer" in str(exc).lower():
                    self._drop_sub()  # the consumer or stream went away: set up again
                if not ever_worked or now - failing_since >= self._stream._connect_timeout:
                    if self._queue.empty():
                        self._queue.put_nowait(failure)
                    failing_since = now
                log.debug("NATS consumer of %s: %s", self._topic, failure.detail)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception as exc:
                log.exception("NATS consumer of %s failed", self._topic)
                await self._queue.put(errors.InternalServerError("events", str(exc)))
                await asyncio.sleep(1.0)

    def _drop_sub(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            asyncio.get_running_loop().create_task(_quietly(sub.unsubscribe()))

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
        sub, self._sub = self._sub, None
        if sub is not None:
            await _quietly(sub.unsubscribe())
        if self._group is None and self._name and self._stream._jsm is not None:
            await _quietly(self._stream._jsm.delete_consumer(self._stream_name, self._name))


async def _done(success: bool) -> None:
    return None


async def _quietly(aw: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):
        await aw
