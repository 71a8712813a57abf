"""The dashboard as a listener of ``micro server`` at ``MICRO_WEB_ADDRESS`` (``off`` to not
start it), and of ``micro web`` alone, with its keys (:mod:`micro.web.keys`) and its
origin (``MICRO_WEB_ORIGIN``)."""

from __future__ import annotations

from micro.routing import RouteTable
from micro.rpc.upstream import Upstream
from micro.server.http import HttpListener
from micro.settings import Settings

__all__ = ["create"]


def create(settings: Settings, upstream: Upstream, routes: RouteTable) -> HttpListener | None:
    """The dashboard edge (``None`` when ``MICRO_WEB_ADDRESS=off``)."""
    if settings.web_address == "off":
        return None
    from micro.web.app import create_app
    from micro.web.guard import configured_origin
    from micro.web.keys import WebKeys

    origin = configured_origin(settings.web_origin)
    app = create_app(upstream, routes, keys=WebKeys.from_settings(settings), origin=origin)
    return HttpListener(app, settings.web_address, name="web")
