"""Rolling updates: the new version starts beside the old one, which serves until the new
one is running.

``micro update`` of a running service builds and starts the new version's instances in
their own work folder (:attr:`~micro.runtime.supervisor.Supervisor.generation`) while the
old ones keep serving. Once every new instance has registered (the runtime's "running":
its server answers), the new version becomes the service and the old instances are
stopped: each deregisters, keeps serving for ``MICRO_DRAIN_DELAY`` while the proxies
forget it, finishes its calls in flight and exits. A build that fails, an instance that
exits before registering, or one that does not register within
:data:`START_TIMEOUT` ends the update instead: the new instances are stopped, the old
ones never stopped serving, and ``micro status`` shows why (``update_error``).

Nothing about the update is kept on the store until it succeeded: a server that stops or
dies during one starts again with the old version only (the new one's processes are
stopped with it, or found by their pid files), so exactly one version runs. An upload
for an update is kept apart (:func:`staged_version`) until then, so the old version's
source is still there to restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final

from micro.runtime.supervisor import Supervisor

__all__ = ["STAGED", "START_TIMEOUT", "Rollout", "staged_version"]

STAGED: Final = "+update"
"""The version suffix an update's upload is kept under until the update succeeded."""
START_TIMEOUT: Final = 60.0
"""Seconds the new instances may take, once started, to register."""
_POLL: Final = 0.05


def staged_version(version: str) -> str:
    """The version an update's upload of ``version`` is kept under."""
    return version + STAGED


class Rollout:
    """One rolling update: ``fresh`` replacing ``old`` (see the module docstring)."""

    def __init__(
        self,
        old: Supervisor,
        fresh: Supervisor,
        *,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.old = old
        self.fresh = fresh
        self.error = ""
        self._start_timeout = start_timeout
        self._task: asyncio.Task[None] | None = None

    def begin(self, done: Callable[[bool], Awaitable[None]]) -> None:
        """Start the new version; ``done(ok)`` once it runs or has failed."""
        self.fresh.start()
        self._task = asyncio.get_running_loop().create_task(self._follow(done))

    async def _follow(self, done: Callable[[bool], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        started: float | None = None
        fresh = self.fresh
        while True:
            if fresh.status == "running":
                break
            if fresh.state in ("error", "stopped"):
                self.error = fresh.error or f"the new version {fresh.state}"
                break
            if fresh.state == "started" and started is None:
                started = loop.time()
            if started is not None and loop.time() - started > self._start_timeout:
                self.error = f"the new instances did not register within {self._start_timeout:g}s"
                break
            await asyncio.sleep(_POLL)
        await done(not self.error)

    def progress(self) -> str:
        """What the new version is doing, for ``micro status``."""
        fresh = self.fresh
        note = f": {fresh.progress}" if fresh.progress and fresh.state != "started" else ""
        return f"new version {fresh.status}{note}"

    async def cancel(self) -> None:
        """Abandon the update: the new version's instances are stopped."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.fresh.stop()
        await self.fresh.drop_work()
