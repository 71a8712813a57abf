"""Request and response types of the ``broker.Broker`` RPC service (Micro's names)."""

from __future__ import annotations

from typing import Final

import msgspec

from micro.broker.base import Message

__all__ = ["SUBSCRIBED", "EmptyResponse", "PublishRequest", "SubscribeRequest"]

SUBSCRIBED: Final = "micro-broker-subscribed"
"""Header of the first message of a ``Broker.Subscribe`` stream: not a message but the
word that the subscription is in place (the client swallows it)."""


class PublishRequest(msgspec.Struct, omit_defaults=True):
    topic: str = ""
    message: Message = msgspec.field(default_factory=Message)


class SubscribeRequest(msgspec.Struct, omit_defaults=True):
    topic: str = ""
    queue: str = ""


class EmptyResponse(msgspec.Struct):
    pass
