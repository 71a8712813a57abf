"""In-process fan-out of "the rules (or revoked tokens) of namespace X changed" to the
watchers of rules: the doors.

Each watcher keeps a set of namespaces not yet read, never a queue of changes: a slow
reader costs at most one entry per namespace, and hears of every namespace that changed.
"""

from __future__ import annotations

import asyncio

from micro.auth.base import RulesWatcher

__all__ = ["ALL_NAMESPACES", "RulesHub"]

ALL_NAMESPACES = "*"
"""What a watcher of every namespace hears first: reload everything."""


class _Watcher(RulesWatcher):
    def __init__(self, hub: RulesHub, namespace: str | None) -> None:
        self._hub = hub
        self.namespace = namespace
        self._pending: dict[str, None] = {}  # an ordered set
        self._ready = asyncio.Event()
        self._stopped = False

    def offer(self, namespace: str) -> None:
        if not self._stopped:
            self._pending[namespace] = None
            self._ready.set()

    async def next(self) -> str:
        while not self._pending:
            if self._stopped:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        namespace = next(iter(self._pending))
        del self._pending[namespace]
        return namespace

    def end(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._pending.clear()
            self._hub._watchers.discard(self)
            self._ready.set()

    async def stop(self) -> None:
        self.end()


class RulesHub:
    """Where rule changes are announced and heard, in this process."""

    def __init__(self) -> None:
        self._watchers: set[_Watcher] = set()
        self._closed = False

    def watch(self, namespace: str | None) -> RulesWatcher:
        """A watcher of ``namespace`` (``None``: all), in place at once; its first item is
        the namespace (or :data:`ALL_NAMESPACES`): "reload now"."""
        watcher = _Watcher(self, namespace)
        if self._closed:
            watcher.end()
            return watcher
        self._watchers.add(watcher)
        watcher.offer(ALL_NAMESPACES if namespace is None else namespace)
        return watcher

    def notify(self, namespace: str) -> None:
        """Tell every watcher of ``namespace`` (and of all) that its rules or revocations
        changed. Those of ``micro`` concern everyone: its admins call into every
        namespace, so every door must hear when one of their tokens is revoked."""
        for watcher in list(self._watchers):
            if watcher.namespace in (None, namespace) or namespace == "micro":
                watcher.offer(namespace)

    def close(self) -> None:
        """End every watcher, and refuse new ones (they end at once)."""
        self._closed = True
        for watcher in list(self._watchers):
            watcher.end()
