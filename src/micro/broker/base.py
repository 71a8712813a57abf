"""The broker interface: ephemeral publish/subscribe, partitioned by namespace.

A message published to a topic reaches every subscription open on that topic at that
moment, except that subscriptions sharing a *queue* group get each message once between
them. Nothing is stored: a subscriber that is not there misses the message. Topics of one
namespace are invisible to another (the backends prefix them with the namespace).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import msgspec

from micro.watch import Subscription

__all__ = ["Broker", "Message", "Subscriber"]


class Message(msgspec.Struct, omit_defaults=True):
    """What travels: headers (the publisher's metadata lands here) and a body."""

    header: dict[str, str] = {}
    body: bytes = b""


class Subscriber(Subscription[Message]):
    """Messages of one topic from the moment the subscription is in place: entered with
    ``async with`` or first read. :meth:`stop` unsubscribes."""

    topic: str
    queue: str | None


class Broker(ABC):
    """Publish and subscribe. Implementations: memory, nats, redis, and the rpc client."""

    name: ClassVar[str]

    @abstractmethod
    async def publish(self, topic: str, message: Message, *, namespace: str = "micro") -> None:
        """Send ``message`` to every subscription of ``topic`` in ``namespace`` now open
        (once per queue group). A topic is a non-empty string of letters, digits and
        ``. _ - /``; anything else is a BadRequest."""

    @abstractmethod
    def subscribe(
        self, topic: str, *, queue: str | None = None, namespace: str = "micro"
    ) -> Subscriber:
        """Subscribe to ``topic``; with ``queue``, share its messages with the other
        subscriptions of that queue group (each message to one of them)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; open subscriptions end."""
