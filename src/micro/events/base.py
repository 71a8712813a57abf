"""The events interface: durable, ordered streams per topic, with consumer groups, acks and replay.

- ``publish`` appends an event to its topic and returns it with its ``sequence`` (1, 2, ...
  per topic): once it returns, the event is durable.
- ``consume`` delivers events in order. Consumers in one *group* share the events (each to one
  of them); different groups each get all. A named group's position survives restarts. With
  ``auto_ack`` an event counts as handled once delivered; otherwise the consumer must
  ``ack()`` it within ``ack_wait`` seconds, or it is delivered again (``nack()`` asks for that
  at once). After ``retry_limit`` redeliveries it moves to the dead-letter topic
  ``<topic>.dead`` instead. At-least-once: a consumer may see an event twice.
- ``read`` replays stored events from an offset without consuming.
- An *offset* is a sequence number (``int``: the first event to deliver) or a time
  (``datetime``: events at or after it). A new group starts at its offset, or at the end (only
  new events) when none is given; an existing group resumes where it was.
- ``groups`` shows each named group of a topic: the sequence it gets next, its unacked
  deliveries and its *lag* (events stored past its position); ``reset`` moves a group to an
  offset (made if new) and forgets its unacked deliveries: from there on it gets every
  event again (a rewind) or skips some (a move forward).
- Retention: a topic keeps events up to an age and a count (settings of the implementation).
- Topics are namespaced: one namespace never sees another's.
"""

from __future__ import annotations

import builtins
import datetime
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final

import msgspec

from micro.watch import Subscription

__all__ = ["DEAD_LETTER_SUFFIX", "Consumer", "Delivery", "Event", "Group", "Offset", "Stream"]

DEAD_LETTER_SUFFIX: Final = ".dead"

Offset = int | datetime.datetime
"""A sequence number (the first event wanted) or a time (events at or after it)."""


class Event(msgspec.Struct, omit_defaults=True):
    """One stored event. ``timestamp`` is unix seconds; ``sequence`` is its place in the topic."""

    id: str
    topic: str
    sequence: int
    timestamp: float
    payload: bytes = b""
    metadata: dict[str, str] = {}

    def decode(self, tp: type[Any]) -> Any:
        """The payload decoded as JSON into ``tp``."""
        return msgspec.json.decode(self.payload, type=tp)


class Group(msgspec.Struct):
    """Where a named consumer group of a topic is.

    ``next`` is the sequence it is given next (every event before it was delivered);
    ``pending`` how many delivered events wait for an ack; ``lag`` how many stored events
    it has not been given yet (published after its position).
    """

    group: str
    next: int
    pending: int = 0
    lag: int = 0


class Delivery:
    """An event handed to a consumer, with its acknowledgement."""

    __slots__ = ("_ack", "attempt", "event")

    def __init__(self, event: Event, attempt: int, ack: Callable[[bool], Awaitable[None]]) -> None:
        self.event = event
        self.attempt = attempt
        """1 for the first delivery, 2 for the first redelivery, ..."""
        self._ack = ack

    async def ack(self) -> None:
        """The event is handled: it will not be delivered to this group again."""
        await self._ack(True)

    async def nack(self) -> None:
        """The event was not handled: deliver it again (counts against the retry limit)."""
        await self._ack(False)

    def __repr__(self) -> str:
        return f"Delivery({self.event.topic}#{self.event.sequence}, attempt={self.attempt})"


class Consumer(Subscription[Delivery]):
    """Deliveries of one topic for one group; :meth:`stop` leaves (unacked events of this
    consumer go back to the group after their ack wait)."""


class Stream(ABC):
    """Durable topics. Implementations: sqlite (embedded), nats (JetStream), redis (Streams),
    and the rpc client of the ``events`` service."""

    name: ClassVar[str]

    @abstractmethod
    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        metadata: dict[str, str] | None = None,
        timestamp: float | None = None,
        namespace: str = "micro",
    ) -> Event:
        """Append an event (``timestamp`` defaults to now); durable once returned."""

    @abstractmethod
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
        """Consume ``topic`` as ``group`` (``None``: a group of one that lives as long as the
        consumer). ``retry_limit`` None = redeliver forever."""

    @abstractmethod
    async def read(
        self,
        topic: str,
        *,
        limit: int = 250,
        offset: Offset | None = None,
        namespace: str = "micro",
    ) -> builtins.list[Event]:
        """Stored events from ``offset`` (default: the oldest kept), at most ``limit``, in order."""

    @abstractmethod
    async def topics(self, *, namespace: str = "micro") -> builtins.list[str]:
        """Topics of the namespace that hold events, sorted."""

    @abstractmethod
    async def groups(self, topic: str, *, namespace: str = "micro") -> builtins.list[Group]:
        """The named consumer groups of ``topic`` (groups of one are not listed), by name;
        ``[]`` when none."""

    @abstractmethod
    async def reset(
        self, topic: str, group: str, *, offset: Offset | None, namespace: str = "micro"
    ) -> Group:
        """Move ``group`` (made if new) to ``offset`` (``None``: the end, past every stored
        event) and drop its unacked deliveries; where it is now. Members consuming keep
        consuming from there."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files; open consumers end."""
