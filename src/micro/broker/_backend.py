"""What the broker's implementations share: topic and queue checks, and the bounded feed
behind every :class:`~micro.broker.base.Subscriber` (a subscriber that falls too far behind
is ended with an error instead of growing memory without bound)."""

from __future__ import annotations

import asyncio
import re
from abc import abstractmethod
from collections.abc import Callable
from typing import Final, Self

from micro import errors
from micro.broker.base import Message, Subscriber

__all__ = ["MAX_PENDING", "Feed", "FeedSubscriber", "check_queue", "check_topic"]

MAX_PENDING: Final = 10_000
"""Messages a subscriber may have waiting before it is ended as too slow."""

_NAME = re.compile(r"[A-Za-z0-9._/-]+")


def check_topic(topic: str) -> str:
    """``topic`` when it is a non-empty string of letters, digits and ``. _ - /``; else 400."""
    if not isinstance(topic, str) or not _NAME.fullmatch(topic):
        raise errors.BadRequest(
            "broker", f"invalid topic {topic!r}: use letters, digits and . _ - /"
        )
    return topic


def check_queue(queue: str | None) -> str | None:
    """A queue group name follows the rules of a topic (``None``/empty: no group)."""
    if not queue:
        return None
    if not isinstance(queue, str) or not _NAME.fullmatch(queue):
        raise errors.BadRequest(
            "broker", f"invalid queue {queue!r}: use letters, digits and . _ - /"
        )
    return queue


class _End:
    """Marks the end of a feed in its queue."""


_END: Final = _End()


class Feed:
    """The messages waiting for one subscriber, at most ``limit`` of them.

    :meth:`push` never blocks: past the limit the feed ends with an error (after the
    messages already waiting) and ``on_overflow`` runs so the backend stops delivering.
    """

    def __init__(
        self, topic: str, *, limit: int = MAX_PENDING, on_overflow: Callable[[], None] | None = None
    ) -> None:
        self._topic = topic
        self._limit = limit
        self._queue: asyncio.Queue[Message | _End] = asyncio.Queue()
        self._error: BaseException | None = None
        self._ended = False
        self.on_overflow = on_overflow

    @property
    def ended(self) -> bool:
        return self._ended

    def push(self, message: Message) -> bool:
        """Queue ``message``; ``False`` when the feed has ended (now or before)."""
        if self._ended:
            return False
        if self._queue.qsize() >= self._limit:
            self.end(
                errors.ServiceUnavailable(
                    "broker",
                    f"subscriber of topic {self._topic!r} fell more than {self._limit} "
                    "messages behind and was ended",
                )
            )
            if self.on_overflow is not None:
                self.on_overflow()
            return False
        self._queue.put_nowait(message)
        return True

    def end(self, error: BaseException | None = None) -> None:
        """End the feed: readers get what is waiting, then ``error`` (or the end)."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._queue.put_nowait(_END)

    def close(self) -> None:
        """End now, dropping what is waiting (the subscriber was stopped)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._ended = True
        self._error = None
        self._queue.put_nowait(_END)

    async def get(self) -> Message:
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # later reads end too
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return item


class FeedSubscriber(Subscriber):
    """A subscriber fed by its backend through a :class:`Feed`; the backend's subscription
    is made by :meth:`_open` on ``async with`` or the first read, undone by :meth:`_close`."""

    def __init__(self, topic: str, queue: str | None, *, limit: int = MAX_PENDING) -> None:
        self.topic = topic
        self.queue = queue
        self.feed = Feed(topic, limit=limit, on_overflow=self._overflowed)
        self._opened = False
        self._stopped = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._closing: asyncio.Task[None] | None = None

    @abstractmethod
    async def _open(self) -> None:
        """Subscribe on the backend; messages published from now on reach the feed."""

    @abstractmethod
    async def _close(self) -> None:
        """Unsubscribe on the backend (called at most once, after :meth:`_open` succeeded)."""

    def _overflowed(self) -> None:
        """The feed overflowed: stop the backend delivering (default: close in a task)."""
        if self._opened and self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close_once())

    async def _close_once(self) -> None:
        if self._opened and not self._closed:
            self._closed = True
            await self._close()

    async def _ensure(self) -> None:
        if self._opened or self._stopped:
            return
        async with self._lock:
            if not (self._opened or self._stopped):
                try:
                    await self._open()
                except BaseException:
                    self._stopped = True
                    self.feed.close()
                    raise
                self._opened = True

    async def __aenter__(self) -> Self:
        await self._ensure()
        return self

    async def next(self) -> Message:
        await self._ensure()
        return await self.feed.get()

    async def stop(self) -> None:
        self.feed.close()
        async with self._lock:
            self._stopped = True
        if self._closing is not None:
            await asyncio.gather(self._closing, return_exceptions=True)
        await self._close_once()
