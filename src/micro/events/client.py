"""Events as services and the CLI see them: the ``events`` RPC service behind the proxy.

A ``namespace`` other than the default ``"micro"`` is sent as the call's
``micro-namespace``; the default leaves the caller's own namespace in force.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
from typing import Any

from micro import errors
from micro.events._checks import check_consume
from micro.events.base import Consumer, Delivery, Event, Group, Offset, Stream
from micro.events.proto import (
    AckRequest,
    ConsumeRequest,
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
from micro.rpc.client import Client, ClientStream
from micro.trace.messaging import published

__all__ = ["RPCStream"]

_SERVICE = "events"
_DRAIN = 5.0


def _metadata(namespace: str) -> dict[str, str] | None:
    return None if namespace == "micro" else {"micro-namespace": namespace}


def _offset_fields(offset: Offset | None) -> tuple[int, float]:
    if isinstance(offset, datetime.datetime):
        if offset.tzinfo is None:
            offset = offset.replace(tzinfo=datetime.UTC)
        return 0, offset.timestamp()
    if offset is None:
        return 0, 0.0  # 0 on the wire: not given
    # Sequences start at 1, so an offset below 1 means "from the first event": sent as 1, since
    # the wire's 0 means "not given" (a new group would then start at the end).
    return max(offset, 1), 0.0


class RPCStream(Stream):
    """Calls the ``events`` service; what user services get by default."""

    name = "rpc"

    def __init__(self, client: Client) -> None:
        self._client = client

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        metadata: dict[str, str] | None = None,
        timestamp: float | None = None,
        namespace: str = "micro",
    ) -> Event:
        async def send(stored: dict[str, str]) -> Event:
            req = PublishRequest(topic, bytes(payload), stored, timestamp or 0.0)
            rsp = await self._client.call(
                _SERVICE,
                "Stream.Publish",
                req,
                response_type=PublishResponse,
                metadata=_metadata(namespace),
            )
            event: Event = rsp.event
            return event

        # The trace's context is stored on the event: its consumers continue the trace.
        return await published(topic, namespace, metadata or {}, send)

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
        sequence, at = _offset_fields(offset)
        req = ConsumeRequest(topic, group or "", sequence, at, auto_ack, ack_wait, retry_limit)
        return _RPCConsumer(self._client, req, namespace)

    async def read(
        self,
        topic: str,
        *,
        limit: int = 250,
        offset: Offset | None = None,
        namespace: str = "micro",
    ) -> builtins.list[Event]:
        sequence, at = _offset_fields(offset)
        rsp = await self._client.call(
            _SERVICE,
            "Store.Read",
            ReadRequest(topic, limit, sequence, at),
            response_type=ReadResponse,
            metadata=_metadata(namespace),
        )
        events: list[Event] = rsp.events
        return events

    async def topics(self, *, namespace: str = "micro") -> builtins.list[str]:
        rsp = await self._client.call(
            _SERVICE,
            "Stream.Topics",
            TopicsRequest(),
            response_type=TopicsResponse,
            metadata=_metadata(namespace),
        )
        topics: list[str] = rsp.topics
        return topics

    async def groups(self, topic: str, *, namespace: str = "micro") -> builtins.list[Group]:
        rsp = await self._client.call(
            _SERVICE,
            "Stream.Groups",
            GroupsRequest(topic),
            response_type=GroupsResponse,
            metadata=_metadata(namespace),
        )
        groups: list[Group] = rsp.groups
        return groups

    async def reset(
        self, topic: str, group: str, *, offset: Offset | None, namespace: str = "micro"
    ) -> Group:
        sequence, at = _offset_fields(offset)
        rsp = await self._client.call(
            _SERVICE,
            "Stream.Reset",
            ResetRequest(topic, group, sequence, at),
            response_type=ResetResponse,
            metadata=_metadata(namespace),
        )
        moved: Group = rsp.group
        return moved


class _RPCConsumer(Consumer):
    """One ``Stream.Consume`` call, opened by the first :meth:`next`."""

    def __init__(self, client: Client, req: ConsumeRequest, namespace: str) -> None:
        self._client = client
        self._req = req
        self._namespace = namespace
        self._call: ClientStream[Any] | None = None
        self._opening: asyncio.Future[ClientStream[Any]] | None = None
        self._stopped = False

    async def _open(self) -> ClientStream[Any]:
        call = await self._client.stream(
            _SERVICE,
            "Stream.Consume",
            response_type=ConsumeResponse,
            metadata=_metadata(self._namespace),
        )
        try:
            await call.send(self._req)
        except BaseException:
            await call.close()
            raise
        return call

    async def next(self) -> Delivery:
        if self._stopped:
            raise StopAsyncIteration
        if self._call is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open())
            self._call = await asyncio.shield(self._opening)
            if self._stopped:
                await self._call.close()
                raise StopAsyncIteration
        call = self._call
        rsp: ConsumeResponse = await call.recv()
        event = Event(rsp.id, rsp.topic, rsp.sequence, rsp.timestamp, rsp.payload, rsp.metadata)

        async def ack(success: bool) -> None:
            if not self._req.auto_ack and not self._stopped:
                await call.send(AckRequest(rsp.id, success))

        return Delivery(event, rsp.attempt, ack)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._call is not None:
            # Half-close, so the acks already sent are applied before the server ends the
            # call; deliveries still in flight go back to the group after their ack wait.
            call = self._call
            try:
                call.close_send()
                async with asyncio.timeout(_DRAIN):
                    while True:
                        await call.recv()
            except (StopAsyncIteration, TimeoutError, errors.MicroError, OSError):
                pass
            finally:
                await call.close()
        elif self._opening is not None:
            self._opening.cancel()
