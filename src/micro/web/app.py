"""The dashboard as a Starlette app: server-rendered pages (Jinja2, autoescaped) with htmx,
served from the package (no CDN, no build step).

Every page but ``/login`` needs a session (else a redirect to the login page); every
request that changes something is a POST from the dashboard's own origin
(:mod:`micro.web.guard`) carrying the session's CSRF token (:mod:`micro.web.session`),
and no GET changes anything; every call a page makes goes to the platform as the
logged-in account (:class:`~micro.web.platform.Caller`), so a page can do nothing that
account could not do with the CLI, and a refusal shows as the error page with its status
(403 for a forbidden action).

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
from micro.routing import RouteTable
from micro.rpc.upstream import Upstream
from micro.web import session as sessions
from micro.web.guard import Guard, own_origin, secure_origin
from micro.web.keys import WebKeys
from micro.web.platform import Caller
from micro.web.session import Jar, Session

__all__ = ["PAGES", "Context", "create_app", "page"]

PAGES: Final = (
    "services",
    "runtime",
    "store",
    "config",
    "events",
    "metrics",
    "traces",
    "accounts",
)
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
    """The dashboard's shared parts: templates, the platform, the cached registry view,
    its keys and its origin."""

    def __init__(
        self, upstream: Upstream, routes: RouteTable, *, keys: WebKeys, origin: str | None = None
    ) -> None:
        self.upstream = upstream
        self.routes = routes
        self.keys = keys
        self.origin = origin
        """``MICRO_WEB_ORIGIN`` (``None``: each request's own)."""
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("micro.web", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["url"] = lambda text: quote(str(text), safe="")

    def jar(self, request: Request) -> Jar:
        """The session's cookies as this request's origin takes them."""
        return Jar(self.keys, secure_origin(own_origin(request, self.origin)))

    def caller(
        self, request: Request, session: Session | None = None, *, namespace: str = "micro"
    ) -> Caller:
        """Calls as the session's account in its namespace (anonymous, in ``namespace``,
        without one), saying where the browser is."""
        client = request.client
        remote = f"{client.host}:{client.port}" if client else ""
        if session is None:
            return Caller(self.upstream, namespace=namespace, remote=remote)
        return Caller(
            self.upstream, token=session.token, namespace=session.namespace, remote=remote
        )

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


def _to_login(request: Request, jar: Jar) -> Response:
    """To the login page (and back to this page after), the session forgotten."""
    target = "/login"
    if request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += f"?next={quote(here, safe='')}"
    response = RedirectResponse(target, status_code=303)
    jar.forget(response)
    return response


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for a page handler: session, CSRF, errors as pages."""

    async def endpoint(request: Request) -> Response:
        web: WebApp = request.app.state.web
        jar = web.jar(request)
        session = sessions.read(request, jar)
        if session is None:
            return _to_login(request, jar)
        try:
            if request.method not in _SAFE:
                await sessions.check_csrf(request, session)
            renewer = web.caller(request, namespace=session.issuer)
            if not await sessions.renew(session, renewer, jar):
                return _to_login(request, jar)
            response = await handler(Context(request, session, web.caller(request, session), web))
        except errors.Unauthorized:
            return _to_login(request, jar)
        except errors.MicroError as exc:
            response = web.error(request, exc, session)
        if session.changed and not session.ended:
            jar.save(response, session)
        return response

    return endpoint


def _next(request: Request, value: str) -> str:
    """Where to go after logging in: a path of this site only (no open redirect)."""
    return value if value.startswith("/") and not value.startswith("//") else "/services"


def _login_form(request: Request, status: int = 200, **values: Any) -> Response:
    """The login page, its form carrying a token (whose nonce goes in a cookie)."""
    web: WebApp = request.app.state.web
    jar = web.jar(request)
    nonce = sessions.login_nonce(request, jar)
    token = sessions.login_token(jar, nonce)
    response = web.render(request, "login.html", status, csrf=token, **values)
    jar.put(response, sessions.LOGIN, nonce, max_age=sessions.LOGIN_LIFE)
    return response


async def login_page(request: Request) -> Response:
    """``GET /login``: the form; ``POST /login``: log in and set the session's cookie."""
    web: WebApp = request.app.state.web
    if request.method == "GET":
        return _login_form(request, next=_next(request, request.query_params.get("next", "")))
    jar = web.jar(request)
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    namespace = str(form.get("namespace", "")).strip() or "micro"
    target = _next(request, str(form.get("next", "")))
    shown = {"username": username, "ns": namespace, "next": target}
    if not await sessions.check_login_token(request, jar):
        stale = "This form was stale or not from this dashboard: log in again"
        return _login_form(request, 403, error=stale, **shown)
    try:
        session = await sessions.log_in(
            web.caller(request, namespace=namespace), jar, username, password, namespace
        )
    except errors.MicroError as exc:
        message = "Wrong username or password" if exc.code == 401 else exc.detail
        return _login_form(request, exc.code, error=message, **shown)
    response = RedirectResponse(target, status_code=303)
    jar.save(response, session)
    jar.drop(response, sessions.LOGIN)
    return response


async def logout_page(context: Context) -> Response:
    """``POST /logout``: forget the session (and revoke its refresh token)."""
    # logging out must work even if the platform cannot be reached
    session = context.session
    revoker = context.app.caller(context.request, namespace=session.issuer)  # its own namespace
    with contextlib.suppress(errors.MicroError):
        await revoker.call("auth", "Auth.Revoke", {"refresh_token": session.refresh})
    context.session.ended = True
    response = RedirectResponse("/login", status_code=303)
    context.app.jar(context.request).forget(response)
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
    context.session.namespace = wanted
    context.session.changed = True
    return RedirectResponse("/services", status_code=303)


async def home(request: Request) -> Response:
    """``/``: the services."""
    return RedirectResponse("/services", status_code=303)


def _page_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in PAGES:
        routes.extend(importlib.import_module(f"micro.web.pages.{name}").ROUTES)
    return routes


def create_app(
    upstream: Upstream,
    routes: RouteTable,
    *,
    keys: WebKeys | None = None,
    origin: str | None = None,
) -> Starlette:
    """The dashboard app. ``keys``: the dashboard's (default: new ones, so sessions end
    when the app does); ``origin``: ``MICRO_WEB_ORIGIN``."""
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
    app.state.web = WebApp(upstream, routes, keys=keys or WebKeys.generate(), origin=origin)
    return app
