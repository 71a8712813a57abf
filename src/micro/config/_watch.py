"""An in-process watcher holding only the latest value: a slow reader never piles up
changes, it reads the newest one. Used by the store implementation and the local copy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Self

from micro import errors
from micro.config.base import Value, Watcher

__all__ = ["SlotWatcher"]


class SlotWatcher(Watcher):
    """A watcher fed by :meth:`offer`.

    ``prime`` runs once, on entry or first read: it must offer the current value and
    start the feeding (atomically, so no change falls between). ``release`` runs once
    when the watcher stops.
    """

    def __init__(
        self,
        prime: Callable[[SlotWatcher], Awaitable[None]],
        release: Callable[[SlotWatcher], None],
    ) -> None:
        self._prime = prime
        self._release = release
        self._item: Value | errors.MicroError | None = None
        self._ready = asyncio.Event()
        self._primed = False
        self._stopped = False
        self.last: object = None
        """What the feeder last compared against, to offer only real changes."""

    def offer(self, item: Value | errors.MicroError) -> None:
        """Make ``item`` the next value (replacing one not yet read); an error ends the
        watch once read."""
        if self._stopped:
            return
        self._item = item
        self._ready.set()

    async def _ensure_primed(self) -> None:
        if self._primed:
            return
        self._primed = True
        try:
            await self._prime(self)
        except BaseException:
            self.end()
            raise

    async def __aenter__(self) -> Self:
        await self._ensure_primed()
        return self

    async def next(self) -> Value:
        if self._stopped:
            raise StopAsyncIteration
        await self._ensure_primed()
        await self._ready.wait()
        if self._stopped:
            raise StopAsyncIteration
        self._ready.clear()
        item, self._item = self._item, None
        if isinstance(item, errors.MicroError):
            self.end()
            raise item
        assert item is not None
        return item

    def end(self) -> None:
        """Stop now (what :meth:`stop` does, callable without awaiting)."""
        if not self._stopped:
            self._stopped = True
            self._item = None
            self._release(self)
            self._ready.set()

    async def stop(self) -> None:
        self.end()
