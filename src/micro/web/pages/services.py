"""Services: the namespace's services (more in the service pages)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from micro.web.app import Context, page

__all__ = ["ROUTES"]


async def services(context: Context) -> Response:
    """``/services``: every service of the namespace, with its versions and node count."""
    answer = await context.caller.call("registry", "Registry.ListServices", {})
    listed = sorted(answer.get("services") or [], key=lambda s: (s["name"], s.get("version", "")))
    return context.render("services.html", services=listed)


ROUTES = [Route("/services", page(services))]
