"""The shape every watch has: an async iterator over :meth:`Subscription.next` that must be
stopped when no longer read (``async with`` stops it), shared by the registry's, config's
and auth's watchers so they read alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Generic, Self, TypeVar

__all__ = ["Subscription"]

T = TypeVar("T")


class Subscription(ABC, Generic[T]):
    """``async for item in sub`` until stopped; ``async with sub`` stops it on exit."""

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.next()
            except StopAsyncIteration:
                return

    @abstractmethod
    async def next(self) -> T:
        """The next item; ``StopAsyncIteration`` once stopped."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop; a pending :meth:`next` ends."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
