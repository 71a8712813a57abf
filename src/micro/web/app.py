"""The dashboard as a Starlette app: server-rendered pages (Jinja2, autoescaped) with htmx,
served from the package (no CDN, no build step).

Every page but ``/login`` needs a session (else a redirect to the login page); every
request that changes something must come from the dashboard's own origin
(:mod:`micro.web.guard`) and carry the session's CSRF token; every call a page
makes goes to the platform as the logged-in account (:class:`~micro.web.platform.Caller`),
so a page can do nothing that account could not do with the CLI, and a refusal shows as
the error page with its status (403 for a forbidden action).

Pages live in :mod:`micro.web.pages`: each module has ``ROUTES``, made with :func:`page`.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from micro import errors
from micro.registry.routes import Routes
from micro.rpc.upstream import Upstream
from micro.web import session as sessions
from micro.web.guard import Guard
from micro.web.platform import Caller
from micro.web.session import Session

__all__ = ["PAGES", "Context", "create_app", "page"]

PAGES: Final = ("services", "runtime", "store", "config", "events", "accounts")
"""The modules of :mod:`micro.web.pages`, in the order of the navigation bar."""

_SAFE: Final = frozenset({"GET", "HEAD"})


@dataclass
class Context:
    """What a page handler gets: the request's session, a caller acting as its account,
    and the app's shared parts."""

    request: Request
    session: Session
    caller: Caller
    app: WebApp

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """A page from ``templates/<template>`` with the session's details in scope."""
        return self.app.render(self.request, template, status, session=self.session, **values)


Handler = Callable[[Context], Awaitable[Response]]


class WebApp:
    """The dashboard's shared parts: templates, the platform, the cached registry view."""

    def __init__(self, upstream: Upstream, routes: Routes, *, secure: bool = False) -> None:
        self.upstream = upstream
        self.routes = routes
        self.secure = secure
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("micro.web", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["url"] = lambda text: quote(str(text), safe="")

    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        """Render a template; every template sees ``request``, ``path`` and ``pages``."""
        html = self.templates.get_template(template).render(
            request=request, path=request.url.path, pages=PAGES, **values
        )
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, exc: errors.MicroError, session: Session | None) -> Response:
        """The error page for a refused or failed call, with its status."""
        return self.render(request, "error.html", exc.code, error=exc, session=session)


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for a page handler: session, CSRF, errors as pages."""

    async def endpoint(request: Request) -> Response:
        web: WebApp = request.app.state.web
        session = await sessions.session_of(request, Caller(web.upstream))
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        caller = Caller(web.upstream, token=session.token, namespace=session.namespace)
        try:
            if request.method not in _SAFE:
                await sessions.check_csrf(request, session)
            response = await handler(Context(request, session, caller, web))
        except errors.Unauthorized:
            response = RedirectResponse("/login", status_code=303)
            sessions.logout(response)
            return response
        except errors.MicroError as exc:
            response = web.error(request, exc, session)
        if session.renewed:
            sessions.set_cookies(response, session.renewed, secure=web.secure)
        return response

    return endpoint


def _next(request: Request, value: str) -> str:
    """Where to go after logging in: a path of this site only (no open redirect)."""
    return value if value.startswith("/") and not value.startswith("//") else "/services"


async def login_page(request: Request) -> Response:
    """``GET /login``: the form; ``POST /login``: log in and set the session's cookies."""
    web: WebApp = request.app.state.web
    if request.method == "GET":
        return web.render(
            request, "login.html", next=_next(request, request.query_params.get("next", ""))
        )
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    namespace = str(form.get("namespace", "")).strip() or "micro"
    target = _next(request, str(form.get("next", "")))
    try:
        cookies = await sessions.login(
            Caller(web.upstream, namespace=namespace), username, password, namespace
        )
    except errors.MicroError as exc:
        message = "Wrong username or password" if exc.code == 401 else exc.detail
        return web.render(
            request,
            "login.html",
            exc.code,
            error=message,
            username=username,
            ns=namespace,
            next=target,
        )
    response = RedirectResponse(target, status_code=303)
    sessions.set_cookies(response, cookies, secure=web.secure)
    return response


async def logout_page(context: Context) -> Response:
    """``POST /logout``: forget the session (and revoke its refresh token)."""
    if context.session.refresh:
        # logging out must work even if the platform cannot be reached
        with contextlib.suppress(errors.MicroError):
            await context.caller.call(
                "auth", "Auth.Revoke", {"refresh_token": context.session.refresh}
            )
    response = RedirectResponse("/login", status_code=303)
    sessions.logout(response)
    return response


async def namespace_page(context: Context) -> Response:
    """``POST /namespace``: look at another namespace (platform admins only)."""
    form = await context.request.form()
    wanted = str(form.get("namespace", "")).strip()
    if not context.session.is_platform_admin and wanted != context.session.issuer:
        raise errors.Forbidden(
            "micro.web", "only admins of the micro namespace may switch namespaces"
        )
    if not wanted:
        raise errors.BadRequest("micro.web", "a namespace is needed")
    response = RedirectResponse("/services", status_code=303)
    sessions.set_cookies(response, {sessions.NAMESPACE_COOKIE: wanted}, secure=context.app.secure)
    return response


async def home(request: Request) -> Response:
    """``/``: the services."""
    return RedirectResponse("/services", status_code=303)


def _page_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in PAGES:
        routes.extend(importlib.import_module(f"micro.web.pages.{name}").ROUTES)
    return routes


def create_app(
    upstream: Upstream, routes: Routes, *, secure: bool = False, origin: str | None = None
) -> Starlette:
    """The dashboard app; ``origin``: ``MICRO_WEB_ORIGIN``."""
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login_page, methods=["GET", "POST"]),
            Route("/logout", page(logout_page), methods=["POST"]),
            Route("/namespace", page(namespace_page), methods=["POST"]),
            Mount("/static", StaticFiles(packages=[("micro.web", "static")]), name="static"),
            *_page_routes(),
        ],
        middleware=[Middleware(Guard, origin=origin)],
    )
    app.state.web = WebApp(upstream, routes, secure=secure)
    return app
