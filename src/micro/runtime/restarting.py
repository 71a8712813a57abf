"""A service the runtime runs that has no node is restarting, not unknown.

While the runtime restarts a crashed instance, or starts a service or its new version,
the registry may hold no node of it. A call through the proxy or the gateway then waits
for it, up to the caller's deadline (at most :data:`LONGEST`), and gets 503 "service X
restarting" if it does not come back in time: never 404 "not found", which would tell
the caller the service does not exist. A name the runtime does not run is not found at
once, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from micro import errors

__all__ = ["LONGEST", "Restarting"]

T = TypeVar("T")

LONGEST: Final = 30.0
"""The longest a call waits for a restarting service (a call with no deadline too)."""
_POLL: Final = 0.1


class Restarting:
    """The proxy's hook at its not-found point; ``expecting(namespace, name)`` says what
    the runtime knows of such a service: ``"restarting"``, ``"error"`` (it failed: 503 at
    once) or ``""`` (none: not found) (:meth:`LocalRuntime.expecting`)."""

    def __init__(self, expecting: Callable[[str, str], str], *, longest: float = LONGEST) -> None:
        self._expecting = expecting
        self._longest = longest

    async def wait(
        self,
        service: str,
        namespace: str,
        timeout_ms: float,
        select: Callable[[], Awaitable[T]],
        missing: errors.NotFound,
    ) -> T:
        """``select()`` again until it finds a node (its answer), within the caller's
        deadline; ServiceUnavailable when the deadline passes first. ``missing`` (the
        caller's own not-found error) at once when the runtime runs no such service."""
        self._check(service, namespace, missing)
        wait = min(timeout_ms / 1000, self._longest) if timeout_ms > 0 else self._longest
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() + _POLL < deadline:
            await asyncio.sleep(_POLL)
            try:
                return await select()
            except errors.NotFound as exc:
                self._check(service, namespace, exc)
        raise errors.ServiceUnavailable(
            service, f"service {service} restarting: it did not come back within {wait:g}s"
        )

    def _check(self, service: str, namespace: str, missing: errors.NotFound) -> None:
        """``missing`` for a service the runtime does not run; 503 for one that failed."""
        state = self._expecting(namespace, service)
        if not state:
            raise missing
        if state == "error":
            raise errors.ServiceUnavailable(
                service, f"service {service} is not running: it failed (see micro status)"
            )
