"""The small callable shapes of the RPC layer: handlers and middleware, both sides, and the
observers a server tells about each call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from micro.rpc.context import Call

__all__ = ["ClientCall", "ClientMiddleware", "Handler", "Next", "Observer", "ServerMiddleware"]

Handler = Callable[[Call], Awaitable[Any]]
"""Serves a call: returns the response (or, for streaming endpoints, an async iterator)."""

ServerMiddleware = Callable[[Call, Handler], Awaitable[Any]]
"""Wraps a handler: ``async def mw(call, next): ...; return await next(call)``."""


class Observer(Protocol):
    """Watches the calls a server serves without taking part in them (metrics, tracing):
    told when the handler, with the middleware, begins and how it ended, by plain calls.

    What gRPC's stats handlers are to its interceptors: a middleware costs a coroutine of
    its own per call, an observer two method calls. For a stream, the end is when it was
    opened (or failed to open)."""

    def begin(self, call: Call) -> Any:
        """The call is about to be handled; what is returned comes back to :meth:`end`."""
        ...

    def end(self, call: Call, begun: Any, error: BaseException | None) -> None:
        """The call was handled: ``error`` is what it raised (``None``: it answered). A
        deadline that passed is a :class:`TimeoutError`."""
        ...


@dataclass(slots=True)
class ClientCall:
    """An outgoing call as client middleware sees it (body already encoded)."""

    service: str
    endpoint: str
    metadata: dict[str, str]
    content_type: str
    body: bytes | None
    timeout: float | None
    address: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


Next = Callable[[ClientCall], Awaitable[Any]]
"""The rest of the client chain: sends the call, returns response bytes or a stream."""

ClientMiddleware = Callable[[ClientCall, Next], Awaitable[Any]]
"""Wraps outgoing calls: ``async def mw(call, next): call.metadata[...] = ...; return await next(call)``."""
