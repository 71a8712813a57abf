"""Exposes any :class:`~micro.events.base.Stream` as the ``events`` RPC service: the
``Stream`` handler (``Publish``, ``Consume`` bidi, ``Topics``) and the ``Store`` handler
(``Read``). Host both under one name::

    server.add("events", [*endpoints_of(Stream(backend)), *endpoints_of(Store(backend))])

Every call acts in the caller's namespace, which it must belong to.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator

from micro import errors
from micro.auth import access
from micro.events.base import Delivery, Offset
from micro.events.base import Stream as StreamBackend
from micro.events.proto import (
    ConsumeMessage,
    ConsumeResponse,
    GroupsRequest,
    GroupsResponse,
    PublishRequest,
    PublishResponse,
    ReadRequest,
    ReadResponse,
    ResetRequest,
    ResetResponse,
    TopicsRequest,
    TopicsResponse,
)
from micro.rpc import context

__all__ = ["Store", "Stream", "offset_of"]

DEFAULT_ACK_WAIT = 30.0


def _namespace() -> str:
    namespace = context.namespace()
    access.authorize(namespace)
    return namespace


def offset_of(sequence: int, at: float) -> Offset | None:
    """The offset a request gives: a sequence, else a time, else none (0 = not given)."""
    if sequence < 0 or at < 0:
        raise errors.BadRequest("events", "offsets must not be negative")
    if sequence:
        return sequence
    if at:
        try:
            return datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
        except (OverflowError, OSError, ValueError):
            raise errors.BadRequest("events", f"offset time {at} is out of range") from None
    return None


class Stream:
    """The ``Stream`` handler: ``Stream.Publish``, ``Stream.Consume``, ``Stream.Topics``,
    ``Stream.Groups`` and ``Stream.Reset``."""

    def __init__(self, backend: StreamBackend) -> None:
        self._backend = backend

    async def publish(self, req: PublishRequest) -> PublishResponse:
        """Append an event; it is durable once this returns."""
        event = await self._backend.publish(
            req.topic,
            req.payload,
            metadata=req.metadata or None,
            timestamp=req.timestamp or None,
            namespace=_namespace(),
        )
        return PublishResponse(event)

    async def consume(self, reqs: AsyncIterator[ConsumeMessage]) -> AsyncIterator[ConsumeResponse]:
        """Bidi: a ConsumeRequest, then AckRequests; streams deliveries until cancelled."""
        namespace = _namespace()
        try:
            first = await anext(reqs)
        except StopAsyncIteration:
            return
        consumer = self._backend.consume(
            first.topic,
            group=first.group or None,
            offset=offset_of(first.offset_sequence, first.offset_time),
            auto_ack=first.auto_ack,
            ack_wait=first.ack_wait or DEFAULT_ACK_WAIT,
            retry_limit=first.retry_limit,
            namespace=namespace,
        )
        unacked: dict[str, Delivery] = {}

        async def acks() -> None:
            # Acks are applied concurrently (bounded), not one after another: each is a durable
            # write, and concurrent ones share a commit instead of waiting for one each.
            room = asyncio.Semaphore(256)
            running: set[asyncio.Task[None]] = set()

            async def apply(delivery: Delivery, success: bool) -> None:
                try:
                    await (delivery.ack() if success else delivery.nack())
                finally:
                    room.release()

            async for msg in reqs:
                delivery = unacked.pop(msg.id, None)
                if delivery is None:
                    continue
                await room.acquire()
                task = asyncio.ensure_future(apply(delivery, msg.success))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running, return_exceptions=True)
            # the caller is done sending (its acks are all in): end the stream
            await consumer.stop()

        acking = asyncio.create_task(acks())
        try:
            while True:
                delivery = await consumer.next()
                if not first.auto_ack:
                    unacked[delivery.event.id] = delivery
                e = delivery.event
                yield ConsumeResponse(
                    e.id, e.topic, e.sequence, e.timestamp, e.payload, e.metadata, delivery.attempt
                )
        except StopAsyncIteration:
            return
        finally:
            acking.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await acking
            await consumer.stop()

    async def topics(self, req: TopicsRequest) -> TopicsResponse:
        """The topics of the caller's namespace."""
        return TopicsResponse(await self._backend.topics(namespace=_namespace()))

    async def groups(self, req: GroupsRequest) -> GroupsResponse:
        """The consumer groups of a topic of the caller's namespace: position, unacked, lag."""
        return GroupsResponse(await self._backend.groups(req.topic, namespace=_namespace()))

    async def reset(self, req: ResetRequest) -> ResetResponse:
        """Move a consumer group of the caller's namespace to a sequence or a time (neither:
        the end); its unacked deliveries are forgotten."""
        namespace = _namespace()
        group = await self._backend.reset(
            req.topic,
            req.group,
            offset=offset_of(req.offset_sequence, req.offset_time),
            namespace=namespace,
        )
        return ResetResponse(group)


class Store:
    """The ``Store`` handler: ``Store.Read`` replays stored events without consuming."""

    def __init__(self, backend: StreamBackend) -> None:
        self._backend = backend

    async def read(self, req: ReadRequest) -> ReadResponse:
        """Stored events from an offset (default: the oldest kept), at most ``limit``."""
        events = await self._backend.read(
            req.topic,
            limit=req.limit,
            offset=offset_of(req.offset_sequence, req.offset_time),
            namespace=_namespace(),
        )
        return ReadResponse(events)
