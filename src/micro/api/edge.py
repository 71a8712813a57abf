"""The gateway as a listener of ``micro server`` at ``MICRO_API_ADDRESS`` (``off`` to not
start it)."""

from __future__ import annotations

from micro.api.app import Gateway
from micro.routing import RouteTable
from micro.rpc.upstream import Upstream
from micro.server.http import HttpLimits, HttpListener
from micro.settings import Settings

__all__ = ["create"]


def create(settings: Settings, upstream: Upstream, routes: RouteTable) -> HttpListener | None:
    """The gateway edge (``None`` when ``MICRO_API_ADDRESS=off``)."""
    if settings.api_address == "off":
        return None
    gateway = Gateway(
        upstream,
        routes,
        max_body=settings.api_max_body,
        cors_origins=settings.api_cors_origins,
    )
    return HttpListener(gateway, settings.api_address, name="API", limits=HttpLimits.of(settings))
