"""Exposes any :class:`~micro.broker.base.Broker` as the ``broker`` RPC service
(``broker.Broker``): ``Publish`` and ``Subscribe`` (a server stream of messages).

Both act in the caller's namespace (``micro-namespace``), which its account must belong
to. A published message carries the headers the publisher set itself, and of the call's
metadata only what says something about the message: tracing (``traceparent``,
``tracestate``) and ``micro-*`` keys, minus those only the platform writes
(``micro-caller-*``, ``micro-remote-address``, ``micro-hops``). Whatever else a call
carries (through the gateway: every HTTP header, cookies included; credentials) stays out
of messages, which any subscriber of the topic reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final

from micro.auth import access
from micro.broker.base import Broker as BrokerBackend
from micro.broker.base import Message
from micro.broker.proto import SUBSCRIBED, EmptyResponse, PublishRequest, SubscribeRequest
from micro.rpc import context

__all__ = ["Broker", "message_header"]


_TRACING: Final = frozenset({"traceparent", "tracestate"})
_PLATFORM_ONLY: Final = ("micro-caller-", "micro-remote-address", "micro-hops")


def message_header(metadata: Mapping[str, str]) -> dict[str, str]:
    """What of a publisher's call metadata a message carries (see the module docstring)."""
    return {
        key: value
        for key, value in metadata.items()
        if key in _TRACING or (key.startswith("micro-") and not key.startswith(_PLATFORM_ONLY))
    }


def _namespace() -> str:
    namespace = context.namespace()
    access.authorize(namespace)
    return namespace


class Broker:
    """The ``Broker`` handler: endpoints ``Broker.Publish`` and ``Broker.Subscribe``."""

    def __init__(self, backend: BrokerBackend) -> None:
        self._backend = backend

    async def publish(self, req: PublishRequest) -> EmptyResponse:
        """Send a message to the topic's subscribers now open."""
        namespace = _namespace()
        header = message_header(context.metadata())
        header.update(req.message.header)
        await self._backend.publish(
            req.topic, Message(header, req.message.body), namespace=namespace
        )
        return EmptyResponse()

    async def subscribe(self, req: SubscribeRequest) -> AsyncIterator[Message]:
        """Stream the topic's messages until the caller cancels. The first message only
        says the subscription is in place (header ``micro-broker-subscribed``)."""
        namespace = _namespace()
        sub = self._backend.subscribe(req.topic, queue=req.queue or None, namespace=namespace)
        async with sub:
            yield Message({SUBSCRIBED: "1"})
            async for message in sub:
                yield message
