"""The broker as services and the CLI see it: the ``broker`` RPC service behind the proxy."""

from __future__ import annotations

from typing import Self

from micro.broker._backend import check_queue, check_topic
from micro.broker.base import Broker, Message, Subscriber
from micro.broker.proto import SUBSCRIBED, PublishRequest, SubscribeRequest
from micro.rpc.client import Client, ClientStream

__all__ = ["RPCBroker"]

_SERVICE = "broker"


def _in(namespace: str) -> dict[str, str]:
    return {"micro-namespace": namespace}


class _RPCSubscriber(Subscriber):
    def __init__(self, client: Client, topic: str, queue: str | None, namespace: str) -> None:
        self.topic = topic
        self.queue = queue
        self._client = client
        self._namespace = namespace
        self._stream: ClientStream[Message] | None = None
        self._stopped = False

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def _open(self) -> ClientStream[Message]:
        if self._stream is None:
            req = SubscribeRequest(self.topic, self.queue or "")
            stream: ClientStream[Message] = await self._client.stream(
                _SERVICE,
                "Broker.Subscribe",
                req,
                response_type=Message,
                metadata=_in(self._namespace),
            )
            self._stream = stream
            try:
                first = await stream.recv()  # the word that the subscription is in place
            except BaseException:
                await stream.close()
                raise
            if SUBSCRIBED not in first.header:  # pragma: no cover - an older server
                self._early = first
        return self._stream

    _early: Message | None = None

    async def next(self) -> Message:
        if self._stopped:
            raise StopAsyncIteration
        stream = await self._open()
        if self._early is not None:
            early, self._early = self._early, None
            return early
        message: Message = await stream.recv()
        return message

    async def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            await self._stream.close()


class RPCBroker(Broker):
    """Calls the ``broker`` service; what user services get by default."""

    name = "rpc"

    def __init__(self, client: Client) -> None:
        self._client = client

    async def publish(self, topic: str, message: Message, *, namespace: str = "micro") -> None:
        check_topic(topic)
        await self._client.call(
            _SERVICE, "Broker.Publish", PublishRequest(topic, message), metadata=_in(namespace)
        )

    def subscribe(
        self, topic: str, *, queue: str | None = None, namespace: str = "micro"
    ) -> Subscriber:
        check_topic(topic)
        return _RPCSubscriber(self._client, topic, check_queue(queue), namespace)
