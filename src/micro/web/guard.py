"""What every dashboard response carries, and the requests that never reach a page.

Every response (pages, fragments, static files, redirects, errors) gets :data:`HEADERS`:
no other page may frame the dashboard (``X-Frame-Options`` and CSP ``frame-ancestors``:
no clickjacking), scripts and styles come from the dashboard's own files only (CSP: no
inline script or style, no ``eval``; htmx is told not to need them in ``base.html``), no
content is sniffed into another type, other origins never learn a dashboard URL from the
``Referer``, and no other origin reads or embeds its responses (CORP).

A request that may change something (any method but GET and HEAD) is refused outright
when the browser says it comes from another origin: ``Sec-Fetch-Site`` other than
``same-origin`` (the dashboard's own pages) or ``none`` (the user's own typing), or an
``Origin`` other than the dashboard's. Another port of the same host is another origin,
though the same *site*: its pages get the dashboard's SameSite=Strict cookies sent along
and may set cookies the dashboard sees, so only this check and the session's own CSRF
token (:mod:`micro.web.session`), never a cookie, can tell them apart. A request with
neither header (a script, an old browser) still needs that token.
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from micro import errors

__all__ = ["HEADERS", "Guard", "configured_origin", "own_origin", "refusal", "secure_origin"]

POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The pages' Content-Security-Policy: they work under it (tests/web checks that no page
breaks a rule of it)."""

HEADERS: Final = {
    "content-security-policy": POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # not no-referrer: under it the browser sends "Origin: null" on the dashboard's own
    # form posts, which the check below would refuse
    "referrer-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
"""The headers of every dashboard response."""

_SAFE: Final = frozenset({"GET", "HEAD"})
_SAME: Final = frozenset({"same-origin", "none"})


def configured_origin(value: str | None) -> str | None:
    """``MICRO_WEB_ORIGIN`` checked and normalised (``scheme://host[:port]``, lower case);
    ``ValueError`` saying what is wrong with it."""
    if not value:
        return None
    parts = urlsplit(value.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ValueError(
            f"MICRO_WEB_ORIGIN={value!r} is not an origin: use scheme://host[:port], "
            "e.g. https://micro.example.com"
        )
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = "" if parts.port in (None, default) else f":{parts.port}"
    except ValueError:
        raise ValueError(f"MICRO_WEB_ORIGIN={value!r}: the port is not a number") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}".lower()  # as a browser's Origin says it


def own_origin(request: Request, configured: str | None) -> str:
    """The dashboard's origin as the browser sees it: ``MICRO_WEB_ORIGIN`` when set (a
    proxy in front changes the scheme or host; see :func:`configured_origin`), else the
    request's scheme and ``Host``."""
    if configured:
        return configured
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def secure_origin(origin: str) -> bool:
    """Whether the browser keeps ``Secure`` cookies for pages of ``origin``: HTTPS, or
    plain HTTP on a loopback host. Checked with Chromium (156): it keeps them on
    http://127.0.0.1 and http://localhost, which it counts as secure contexts, and drops
    them on plain HTTP of any other host (so the session would never come back)."""
    parts = urlsplit(origin)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(request: Request, configured: str | None) -> str:
    """Why a request that may change something is refused ("" when it may go on)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in _SAME:
        return f"a request from another site or origin ({site}) may not change anything"
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != own_origin(request, configured):
        return "a request from another origin may not change anything"
    return ""


class Guard:
    """ASGI middleware: :data:`HEADERS` on every response; a cross-origin request that
    may change something gets the 403 error page and never reaches the app."""

    def __init__(self, app: ASGIApp, origin: str | None = None) -> None:
        self.app = app
        self.origin = origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        if scope["method"] not in _SAFE:
            request = Request(scope, receive)
            why = refusal(request, self.origin)
            if why:
                response = request.app.state.web.error(
                    request, errors.Forbidden("micro.web", why), None
                )
                await response(scope, receive, send_headed)
                return
        await self.app(scope, receive, send_headed)
