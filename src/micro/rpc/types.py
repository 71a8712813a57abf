"""The small callable shapes of the RPC layer: handlers and middleware, both sides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from micro.rpc.context import Call

__all__ = ["ClientCall", "ClientMiddleware", "Handler", "Next", "ServerMiddleware"]

Handler = Callable[[Call], Awaitable[Any]]
"""Serves a call: returns the response (or, for streaming endpoints, an async iterator)."""

ServerMiddleware = Callable[[Call, Handler], Awaitable[Any]]
"""Wraps a handler: ``async def mw(call, next): ...; return await next(call)``."""


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
