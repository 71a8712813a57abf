"""The dashboard's session: one sealed cookie, and a CSRF token bound to it.

The session cookie holds the account's access and refresh tokens, the namespace in view
and when the session ends, sealed (AES-GCM) under the dashboard's key
(:mod:`micro.web.keys`). Scripts never see it (HttpOnly), no other site's page sends it
(SameSite=Strict), nothing but the dashboard can make or alter it, and its parts cannot
be mixed with another session's: were the tokens separate cookies, a page could plant its
own account's refresh token (whose CSRF token it knows) beside the victim's access token.
A page on another port can still replace the whole cookie with one of its own account's
sessions: the victim then acts as the attacker, never the attacker as the victim. The
access token is renewed with the refresh token when it has less than a minute left.

Every change (a POST) must carry the session's CSRF token (a hidden ``csrf`` field, or
the ``X-CSRF-Token`` header htmx sends): an HMAC, under the dashboard's key, of the
session's refresh token. It is not compared with a cookie: a page on another port of the
same host can set cookies the dashboard receives ("cookie tossing"), so a token matching
a cookie (double submit) would prove nothing. Only the dashboard can compute it, and only
for a session it made. The login form has a token of its own: an HMAC of a random nonce
it leaves in a short-lived cookie.

Cookie names are ``__Host-micro-*`` (Secure, Path=/, no Domain) where the browser keeps
Secure cookies (:func:`~micro.web.guard.secure_origin`), ``micro-*`` on plain HTTP
elsewhere. ``__Host-`` stops a sibling subdomain from planting them, not another port of
the same host (cookies know no ports; checked with Chromium): nothing rests on a cookie
being the dashboard's own but the seal.

The claims shown (name, namespace, scopes) are read from the access token, which came
sealed from the platform's answer; the platform's door still verifies it on every call.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from micro import errors
from micro.web.keys import WebKeys
from micro.web.platform import Caller

__all__ = [
    "LOGIN",
    "LOGIN_LIFE",
    "SESSION",
    "Jar",
    "Session",
    "check_csrf",
    "check_login_token",
    "log_in",
    "login_nonce",
    "login_token",
    "read",
    "renew",
]

SESSION: Final = "micro-session"
LOGIN: Final = "micro-login"
_LIFE: Final = 8 * 3600
"""How long a dashboard login lasts (the access token is renewed within it)."""
LOGIN_LIFE: Final = 3600
"""How long a login form stays good (seconds)."""
_NONCE_CHARS: Final = 32
_EARLY: Final = 60
_ACCESS: Final = 900
_PURPOSE: Final = "session"


class _Sealed(msgspec.Struct, forbid_unknown_fields=True):
    """What the session cookie holds, sealed."""

    token: str
    refresh: str
    namespace: str
    ends: float


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
    namespace: str
    ends: float
    """When the login ends (unix seconds), whatever the renewals."""
    csrf: str = ""
    """The token every change must carry (set by :func:`read` and :func:`renew`)."""
    claims: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    """The cookie must be written again (tokens renewed, another namespace)."""
    ended: bool = False
    """Logged out: the cookie is forgotten, never written again."""

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


@dataclass(frozen=True, slots=True)
class Jar:
    """The dashboard's cookies as one request's origin takes them: names and flags."""

    keys: WebKeys
    secure: bool
    """``__Host-`` names and the Secure flag (the browser keeps Secure cookies here)."""

    def name(self, base: str) -> str:
        """The cookie's name on this origin."""
        return f"__Host-{base}" if self.secure else base

    def get(self, request: Request, base: str) -> str:
        """The cookie's value ("" when not sent)."""
        return request.cookies.get(self.name(base), "")

    def put(self, response: Response, base: str, value: str, *, max_age: int) -> None:
        """Set an HttpOnly, SameSite=Strict cookie for the whole dashboard."""
        response.set_cookie(
            self.name(base),
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/",
        )

    def drop(self, response: Response, base: str) -> None:
        """Forget the cookie."""
        response.delete_cookie(
            self.name(base), path="/", secure=self.secure, httponly=True, samesite="strict"
        )

    def save(self, response: Response, session: Session) -> None:
        """Write the session's cookie on ``response``."""
        sealed = _Sealed(session.token, session.refresh, session.namespace, session.ends)
        value = self.keys.seal(msgspec.json.encode(sealed), purpose=_PURPOSE)
        self.put(response, SESSION, value, max_age=max(int(session.ends - time.time()), 0))

    def forget(self, response: Response) -> None:
        """Forget the session."""
        self.drop(response, SESSION)


def _csrf(keys: WebKeys, refresh: str) -> str:
    return keys.token("csrf", refresh)


def read(request: Request, jar: Jar) -> Session | None:
    """The request's session (``None``: not logged in, or not a session this dashboard
    made). Not renewed yet: see :func:`renew`."""
    data = jar.keys.open(jar.get(request, SESSION), purpose=_PURPOSE)
    if data is None:
        return None
    try:
        sealed = msgspec.json.decode(data, type=_Sealed)
    except msgspec.DecodeError:
        return None  # sealed by an older dashboard
    if sealed.ends <= time.time() or not sealed.refresh:
        return None
    return Session(
        sealed.token,
        sealed.refresh,
        sealed.namespace,
        sealed.ends,
        csrf=_csrf(jar.keys, sealed.refresh),
        claims=_claims(sealed.token),
    )


async def log_in(caller: Caller, jar: Jar, username: str, password: str, namespace: str) -> Session:
    """Log in: a new session. Raises the platform's 401 on a wrong password."""
    answer = await caller.call(
        "auth",
        "Auth.Token",
        {
            "id": username,
            "secret": password,
            "token_expiry": _ACCESS,
            "options": {"namespace": namespace},
        },
    )
    token = answer["token"]
    access, refresh = token["access_token"], token["refresh_token"]
    return Session(
        access,
        refresh,
        namespace,
        time.time() + _LIFE,
        csrf=_csrf(jar.keys, refresh),
        claims=_claims(access),
        changed=True,
    )


async def renew(session: Session, caller: Caller, jar: Jar) -> bool:
    """Renew the access token when it is due; False when the session is over."""
    if float(session.claims.get("exp") or 0) - time.time() >= _EARLY:
        return True
    try:
        answer = await caller.call(
            "auth",
            "Auth.Token",
            {
                "refresh_token": session.refresh,
                "token_expiry": _ACCESS,
                "options": {"namespace": session.issuer},
            },
        )
    except errors.Unauthorized:
        return False
    fresh = answer["token"]
    session.token, session.refresh = fresh["access_token"], fresh["refresh_token"]
    session.claims = _claims(session.token)
    session.csrf = _csrf(jar.keys, session.refresh)
    session.changed = True
    return True


async def _sent(request: Request) -> str:
    sent = request.headers.get("x-csrf-token", "")
    if not sent:
        value = (await request.form()).get("csrf", "")
        sent = value if isinstance(value, str) else ""
    return sent


async def check_csrf(request: Request, session: Session) -> None:
    """Refuse a change that does not carry the session's CSRF token."""
    sent = await _sent(request)
    if not sent or not secrets.compare_digest(sent.encode(), session.csrf.encode()):
        raise errors.Forbidden("micro.web", "the form is stale or not from this dashboard (CSRF)")


def login_nonce(request: Request, jar: Jar) -> str:
    """The nonce of the login form's token: the one the browser holds (so that two login
    tabs both work), else a new one. Keep it with :meth:`Jar.put` (:data:`LOGIN`)."""
    nonce = jar.get(request, LOGIN)
    return nonce if len(nonce) == _NONCE_CHARS else secrets.token_urlsafe(24)


def login_token(jar: Jar, nonce: str) -> str:
    """The login form's token for ``nonce``."""
    return jar.keys.token("login", nonce)


async def check_login_token(request: Request, jar: Jar) -> bool:
    """Whether a login form carries the token of the nonce the browser holds."""
    nonce, sent = jar.get(request, LOGIN), await _sent(request)
    return bool(nonce and sent) and jar.keys.check(sent, "login", nonce)
