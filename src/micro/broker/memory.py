"""The in-process broker: fan-out to the subscriptions of this process, queue groups
served round robin. The server's default broker; also what tests use."""

from __future__ import annotations

from dataclasses import dataclass, field

from micro.broker._backend import MAX_PENDING, FeedSubscriber, check_queue, check_topic
from micro.broker.base import Broker, Message, Subscriber

__all__ = ["MemoryBroker"]


@dataclass(slots=True)
class _Group:
    members: list[_MemorySubscriber] = field(default_factory=list)
    turn: int = 0


@dataclass(slots=True)
class _Topic:
    plain: list[_MemorySubscriber] = field(default_factory=list)
    groups: dict[str, _Group] = field(default_factory=dict)


class _MemorySubscriber(FeedSubscriber):
    def __init__(
        self, broker: MemoryBroker, key: tuple[str, str], queue: str | None, limit: int
    ) -> None:
        super().__init__(key[1], queue, limit=limit)
        self._broker = broker
        self._key = key

    async def _open(self) -> None:
        self._broker._attach(self._key, self)

    async def _close(self) -> None:
        self._broker._detach(self._key, self)

    def _overflowed(self) -> None:
        self._broker._detach(self._key, self)  # at once: the next publish skips it


class MemoryBroker(Broker):
    """Publish/subscribe within this process. ``max_pending`` bounds each subscriber's
    backlog: one that falls further behind is ended with a 503."""

    name = "memory"

    def __init__(self, *, max_pending: int = MAX_PENDING) -> None:
        self._max_pending = max_pending
        self._topics: dict[tuple[str, str], _Topic] = {}
        self._subscribers: set[_MemorySubscriber] = set()

    async def publish(self, topic: str, message: Message, *, namespace: str = "micro") -> None:
        check_topic(topic)
        entry = self._topics.get((namespace, topic))
        if entry is None:
            return
        header, body = dict(message.header), message.body
        for sub in list(entry.plain):
            sub.feed.push(Message(dict(header), body))
        for group in list(entry.groups.values()):
            # Round robin; a member that overflows is dropped and the next one tried.
            while group.members:
                sub = group.members[group.turn % len(group.members)]
                group.turn += 1
                if sub.feed.push(Message(dict(header), body)):
                    break

    def subscribe(
        self, topic: str, *, queue: str | None = None, namespace: str = "micro"
    ) -> Subscriber:
        check_topic(topic)
        return _MemorySubscriber(self, (namespace, topic), check_queue(queue), self._max_pending)

    async def close(self) -> None:
        for sub in list(self._subscribers):
            sub.feed.end()
            self._detach(sub._key, sub)

    def _attach(self, key: tuple[str, str], sub: _MemorySubscriber) -> None:
        entry = self._topics.setdefault(key, _Topic())
        if sub.queue is None:
            entry.plain.append(sub)
        else:
            entry.groups.setdefault(sub.queue, _Group()).members.append(sub)
        self._subscribers.add(sub)

    def _detach(self, key: tuple[str, str], sub: _MemorySubscriber) -> None:
        self._subscribers.discard(sub)
        entry = self._topics.get(key)
        if entry is None:
            return
        if sub.queue is None:
            if sub in entry.plain:
                entry.plain.remove(sub)
        else:
            group = entry.groups.get(sub.queue)
            if group is not None and sub in group.members:
                group.members.remove(sub)
                if not group.members:
                    del entry.groups[sub.queue]
        if not entry.plain and not entry.groups:
            del self._topics[key]
