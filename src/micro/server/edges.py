"""The server's edges: listeners for callers that do not speak the native wire.

``api`` is the HTTP/JSON gateway (``MICRO_API_ADDRESS``), ``grpc`` the gRPC edge
(``MICRO_GRPC_ADDRESS``), ``web`` the dashboard (``MICRO_WEB_ADDRESS``). Each takes calls in and hands them to the proxy's forwarder
in-process (an :class:`~micro.rpc.upstream.Upstream`), so they pass the same door and
reach the same nodes as native calls, and one :class:`~micro.routing.RouteTable` (the
registry's view, cached) that the server keeps for all of them. An edge whose address is ``off``, or whose optional
packages are missing, is not started.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from micro.routing import RouteTable
from micro.rpc.upstream import Upstream
from micro.settings import Settings

__all__ = ["EDGES", "Edge", "EdgeFactory", "create"]


class Edge(Protocol):
    """A listener of the server's."""

    async def start(self) -> str:
        """Listen; the address callers reach it at."""
        ...

    async def stop(self) -> None:
        """Stop listening; in-flight requests get a short grace period."""
        ...


EdgeFactory = Callable[[Settings, Upstream, RouteTable], Edge | None]
"""Makes an edge from the settings (``None``: not wanted or not installed)."""

EDGES: dict[str, str] = {
    "api": "micro.api.edge:create",
    "grpc": "micro.server.grpc_edge:create",
    "web": "micro.web.edge:create",
}
"""Edge name -> its factory, imported only when the server starts."""


def create(name: str, settings: Settings, upstream: Upstream, routes: RouteTable) -> Edge | None:
    """The edge ``name`` (``None`` when it is off or its optional packages are missing)."""
    module_name, _, attr = EDGES[name].partition(":")
    factory: EdgeFactory = getattr(importlib.import_module(module_name), attr)
    return factory(settings, upstream, routes)
