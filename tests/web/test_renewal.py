"""A session's life in process, against a stand-in platform whose access tokens are due
for renewal at once: renewed on the next page, the CSRF token unchanged by it, a
namespace switch kept in the sealed cookie, a refused renewal back to the login page,
and a logout never undone by a renewal in the same request. Every call says where the
browser is (``micro-remote-address``).

The dashboard is reached as ``http://dash.test``: plain HTTP off loopback, so its cookies
have plain names."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from micro import errors
from micro.web.app import create_app
from micro.wire.frames import RequestHeader

BROWSER = ("203.0.113.5", 4242)


def _jwt(**claims: Any) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.signature"


class Platform:
    """Answers what the dashboard asks; keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.refuse_refresh = False

    def endpoints(self) -> list[str]:
        return [endpoint for endpoint, _, _ in self.calls]

    async def unary(self, header: RequestHeader, body: bytes) -> bytes:
        request = json.loads(body)
        self.calls.append((header.endpoint, dict(header.metadata), request))
        if header.endpoint == "Auth.Token":
            if request.get("refresh_token") and self.refuse_refresh:
                raise errors.Unauthorized("auth", "invalid refresh token")
            access = _jwt(sub="admin", iss="micro", scopes=["admin"], exp=time.time() + 30)
            return json.dumps({"token": {"access_token": access, "refresh_token": "r1"}}).encode()
        if header.endpoint in ("Registry.ListServices", "Auth.Revoke"):
            return b"{}"
        raise errors.NotFound("test", header.endpoint)

    async def open_stream(self, header: RequestHeader, first: bytes | None) -> Any:
        raise NotImplementedError


class Browser:
    """Requests to the app with a cookie jar, as a browser on dash.test sends them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    async def send(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        body = urlencode(form or {}).encode()
        headers = [(b"host", b"dash.test")]
        if self.cookies:
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            headers.append((b"cookie", cookie.encode()))
        if form is not None:
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers, "client": BROWSER,
            "server": ("dash.test", 80),
        }  # fmt: skip
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = sent[0]
        self.set_cookies = [v.decode() for k, v in start["headers"] if k == b"set-cookie"]
        for line in self.set_cookies:
            name, _, rest = line.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in line or value in ("", '""'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        text = b"".join(m.get("body", b"") for m in sent[1:]).decode()
        return start["status"], headers, text

    async def csrf(self, path: str) -> str:
        """The CSRF token of the page at ``path`` (a hidden field or htmx's header)."""
        _, _, text = await self.send("GET", path)
        found = re.search(r'name="csrf" value="([^"]+)"|X-CSRF-Token&#34;: &#34;([^&]+)&', text)
        assert found is not None, text
        return found.group(1) or found.group(2)

    async def log_in(self) -> None:
        token = await self.csrf("/login")
        form = {"username": "admin", "password": "pw", "namespace": "micro", "csrf": token}
        status, headers, _ = await self.send("POST", "/login", form)
        assert (status, headers["location"]) == (303, "/services")
        assert "micro-session" in self.cookies
        assert "micro-login" not in self.cookies  # the form's nonce is spent


async def test_renewal_keeps_the_csrf_token_and_the_browsers_address() -> None:
    platform = Platform()
    browser = Browser(create_app(platform, None))  # type: ignore[arg-type]
    await browser.log_in()
    before = browser.cookies["micro-session"]
    token = await browser.csrf("/services")
    assert platform.endpoints() == ["Auth.Token", "Auth.Token", "Registry.ListServices"]
    assert platform.calls[1][2]["refresh_token"] == "r1"
    assert browser.cookies["micro-session"] != before  # the renewed tokens, sealed again
    for _, metadata, _ in platform.calls:
        assert metadata["micro-remote-address"] == "203.0.113.5:4242"

    status, _, _ = await browser.send("POST", "/namespace", {"namespace": "team", "csrf": token})
    assert status == 303
    assert await browser.csrf("/services") == token  # the session's, whatever renewed
    assert platform.calls[-1][1]["micro-namespace"] == "team"


async def test_a_refused_renewal_ends_the_session() -> None:
    platform = Platform()
    browser = Browser(create_app(platform, None))  # type: ignore[arg-type]
    await browser.log_in()
    platform.refuse_refresh = True
    status, headers, _ = await browser.send("GET", "/services")
    assert (status, headers["location"]) == (303, "/login?next=%2Fservices")
    assert "micro-session" not in browser.cookies


async def test_logout_revokes_and_is_not_undone_by_a_renewal() -> None:
    platform = Platform()
    browser = Browser(create_app(platform, None))  # type: ignore[arg-type]
    await browser.log_in()
    token = await browser.csrf("/services")
    platform.calls.clear()
    status, _, _ = await browser.send("POST", "/logout", {"csrf": token})
    assert status == 303
    assert platform.endpoints() == ["Auth.Token", "Auth.Revoke"]  # renewed, then revoked
    assert [c for c in browser.set_cookies if c.startswith("micro-session=")] == [
        next(c for c in browser.set_cookies if "Max-Age=0" in c)
    ]
    assert "micro-session" not in browser.cookies
