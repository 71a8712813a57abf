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
    """The route table's hook at its not-found point; ``expecting(namespace, name)`` says
    what the runtime knows of such a service: ``"restarting"``, ``"error"`` (it failed: 503
    at once) or ``""`` (none: not found) (:meth:`LocalRuntime.expecting`).

    No error object is passed in or kept: a not-found error held by a frame of its own
    traceback is a reference cycle, and every unknown name a caller sends would leave one
    (with the request it came with) until the garbage collector's next full pass.
    """

    def __init__(self, expecting: Callable[[str, str], str], *, longest: float = LONGEST) -> None:
        self._expecting = expecting
        self._longest = longest

    def expects(self, namespace: str, service: str) -> bool:
        """Whether the runtime runs ``service`` (so a missing node is a restart); 503 at
        once for one that failed."""
        state = self._expecting(namespace, service)
        if state == "error":
            raise errors.ServiceUnavailable(
                service, f"service {service} is not running: it failed (see micro status)"
            )
        return bool(state)

    async def wait(
        self,
        service: str,
        namespace: str,
        timeout_ms: float,
        select: Callable[[], Awaitable[T]],
    ) -> T:
        """``select()`` again until it finds a node (its answer), within the caller's
        deadline; 503 when the deadline passes first, or when the service fails; its
        not-found error when the runtime stops running it."""
        wait = min(timeout_ms / 1000, self._longest) if timeout_ms > 0 else self._longest
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() + _POLL < deadline:
            await asyncio.sleep(_POLL)
            try:
                return await select()
            except errors.NotFound:
                if not self.expects(namespace, service):
                    raise
        raise errors.ServiceUnavailable(
            service, f"service {service} restarting: it did not come back within {wait:g}s"
        )
