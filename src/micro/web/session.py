"""The dashboard's session: the account's tokens in HttpOnly, SameSite cookies, and a CSRF
token checked on every form.

``micro-token`` (the access token) and ``micro-refresh`` are HttpOnly (scripts never see
them) and SameSite=Strict (no other site's page sends them). The access token is renewed
with the refresh token when it has less than a minute left. ``micro-csrf`` is a random
token each form carries back (a hidden field, or the ``X-CSRF-Token`` header htmx sends):
a POST without the matching token is refused (double submit, on top of SameSite).
The claims shown (name, namespace, scopes) are read from the token only for display; the
platform's door verifies the token on every call the dashboard makes.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from micro import errors
from micro.web.platform import Caller

__all__ = ["CSRF_COOKIE", "TOKEN_COOKIE", "Session", "check_csrf", "login", "logout", "session_of"]

TOKEN_COOKIE: Final = "micro-token"
REFRESH_COOKIE: Final = "micro-refresh"
CSRF_COOKIE: Final = "micro-csrf"
NAMESPACE_COOKIE: Final = "micro-namespace"
_LIFE: Final = 8 * 3600
"""How long a dashboard login lasts (the access token is renewed within it)."""
_EARLY: Final = 60


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = msgspec.json.decode(
            base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        )
    except (ValueError, msgspec.DecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass
class Session:
    """Who is using the dashboard, and where."""

    token: str
    refresh: str
    csrf: str
    namespace: str
    claims: dict[str, Any] = field(default_factory=dict)
    renewed: dict[str, str] | None = None
    """New tokens to set as cookies on the response (after a renewal)."""

    @property
    def name(self) -> str:
        """The account's name."""
        return str(self.claims.get("name") or self.claims.get("sub") or "")

    @property
    def issuer(self) -> str:
        """The account's own namespace."""
        return str(self.claims.get("iss") or "micro")

    @property
    def scopes(self) -> list[str]:
        """The account's scopes."""
        scopes = self.claims.get("scopes") or []
        return [str(s) for s in scopes] if isinstance(scopes, list) else []

    @property
    def is_platform_admin(self) -> bool:
        """An admin of ``micro``: may look at every namespace."""
        return self.issuer == "micro" and "admin" in self.scopes

    @property
    def is_admin(self) -> bool:
        """An admin of the namespace in view."""
        return self.is_platform_admin or (self.issuer == self.namespace and "admin" in self.scopes)


def _set(
    response: Response, name: str, value: str, *, secure: bool, http_only: bool = True
) -> None:
    response.set_cookie(
        name, value, max_age=_LIFE, httponly=http_only, samesite="strict", secure=secure, path="/"
    )


async def login(caller: Caller, username: str, password: str, namespace: str) -> dict[str, str]:
    """Log in; the cookies to set. Raises the platform's 401 on a wrong password."""
    answer = await caller.call(
        "auth",
        "Auth.Token",
        {
            "id": username,
            "secret": password,
            "token_expiry": 900,
            "options": {"namespace": namespace},
        },
    )
    token = answer["token"]
    return {
        TOKEN_COOKIE: token["access_token"],
        REFRESH_COOKIE: token["refresh_token"],
        CSRF_COOKIE: secrets.token_urlsafe(24),
        NAMESPACE_COOKIE: namespace,
    }


def set_cookies(response: Response, cookies: dict[str, str], *, secure: bool) -> None:
    """Set the session's cookies on ``response``."""
    for name, value in cookies.items():
        _set(response, name, value, secure=secure)


def logout(response: Response) -> None:
    """Forget the session's cookies."""
    for name in (TOKEN_COOKIE, REFRESH_COOKIE, CSRF_COOKIE, NAMESPACE_COOKIE):
        response.delete_cookie(name, path="/")


async def session_of(request: Request, caller: Caller) -> Session | None:
    """The session of a request (``None``: not logged in), its token renewed if due."""
    token = request.cookies.get(TOKEN_COOKIE, "")
    refresh = request.cookies.get(REFRESH_COOKIE, "")
    csrf = request.cookies.get(CSRF_COOKIE, "")
    if not token or not csrf:
        return None
    claims = _claims(token)
    namespace = request.cookies.get(NAMESPACE_COOKIE) or str(claims.get("iss") or "micro")
    session = Session(token, refresh, csrf, namespace, claims)
    if float(claims.get("exp") or 0) - time.time() < _EARLY:
        if not refresh:
            return None
        try:
            answer = await caller.call(
                "auth",
                "Auth.Token",
                {
                    "refresh_token": refresh,
                    "token_expiry": 900,
                    "options": {"namespace": session.issuer},
                },
            )
        except errors.Unauthorized:
            return None
        fresh = answer["token"]
        session.token, session.refresh = fresh["access_token"], fresh["refresh_token"]
        session.claims = _claims(session.token)
        session.renewed = {TOKEN_COOKIE: session.token, REFRESH_COOKIE: session.refresh}
    return session


async def check_csrf(request: Request, session: Session) -> None:
    """Refuse a state-changing request that does not carry the session's CSRF token."""
    sent = request.headers.get("x-csrf-token", "")
    if not sent:
        form = await request.form()
        value = form.get("csrf", "")
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(sent, session.csrf):
        raise errors.Forbidden("micro.web", "the form is stale or not from this dashboard (CSRF)")
