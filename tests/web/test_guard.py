"""What guards every page: the pages work under their Content-Security-Policy, no route
changes anything over GET, the login form has a token, and a dashboard behind a proxy
(``MICRO_WEB_ORIGIN``) takes its own origin's posts only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount, Route
from tests._support import HELLOWORLD, http, ok
from tests.web.conftest import log_in

from micro.testing import MicroServerProcess, start_server
from micro.web.app import create_app
from micro.web.guard import configured_origin, secure_origin

READ_ONLY = {
    "/",
    "/login",
    "/services",
    "/services/{name}",
    "/runtime",
    "/runtime/table",
    "/runtime/{name}/logs",
    "/runtime/{name}/logs/tail",
    "/store",
    "/store/{database}",
    "/store/{database}/{table}",
    "/store/{database}/{table}/record",
    "/config",
    "/events",
    "/events/{topic}",
    "/events/{topic}/tail",
    "/metrics",
    "/traces",
    "/traces/{trace_id}",
    "/accounts",
}
"""Every route that answers GET, each read to be sure it changes nothing."""


def test_no_route_changes_anything_over_get() -> None:
    """A route that changes something takes POST only; a new GET route must be added to
    :data:`READ_ONLY` (after reading it: no platform call that changes anything)."""
    app = create_app(None, None)  # type: ignore[arg-type]  # routes only, never served
    gets = set()
    for route in app.routes:
        if isinstance(route, Mount):
            continue  # the static files
        assert isinstance(route, Route)
        methods = route.methods or set()
        if methods - {"GET", "HEAD"}:
            assert not methods & {"GET", "HEAD"} or route.path == "/login", route.path
        else:
            gets.add(route.path)
    assert gets | {"/login"} == READ_ONLY


def test_the_configured_origin_is_checked_and_said_as_browsers_say_it() -> None:
    assert configured_origin(None) is None
    assert configured_origin("https://Micro.Example:443/") == "https://micro.example"
    assert configured_origin("http://10.0.0.5:8082") == "http://10.0.0.5:8082"
    assert configured_origin("https://[::1]:8443") == "https://[::1]:8443"
    for bad in ("micro.example", "ftp://micro.example", "https://micro.example/dash"):
        with pytest.raises(ValueError, match="is not an origin: use scheme://host"):
            configured_origin(bad)


def test_secure_cookies_where_browsers_keep_them() -> None:
    for origin in ("https://micro.example", "http://127.0.0.1:8082", "http://localhost:8082",
                   "http://[::1]:8082", "http://dash.localhost"):  # fmt: skip
        assert secure_origin(origin), origin
    for origin in ("http://192.0.2.2:8082", "http://micro.example"):
        assert not secure_origin(origin), origin


def test_every_page_works_under_its_content_security_policy(
    micro_server: MicroServerProcess, page: Any
) -> None:
    """Every page, an htmx call, a stream and a live tail, with no rule of the policy
    broken."""
    from playwright.sync_api import expect

    broken: list[str] = []
    page.on("console", lambda m: broken.append(m.text) if "Content Security" in m.text else None)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => console.error('Content Security violation: ' + e.violatedDirective))"
    )
    micro_server.start_service(HELLOWORLD, name="helloworld")
    ok(micro_server.micro("store", "write", "greeting", "hi", "--table", "webtest"))
    ok(micro_server.micro("events", "publish", "webtopic", '{"n": 1}'))
    log_in(page, micro_server)
    web = micro_server.web
    for path in (
        "/services",
        "/runtime",
        "/store",
        "/store/micro/webtest",
        "/store/micro/webtest/record?key=greeting",
        "/config",
        "/events",
        "/events/webtopic",
        "/metrics",
        "/accounts",
        "/store/micro/webtest/record",  # the error page
    ):
        page.goto(f"{web}{path}")
    page.goto(f"{web}/events/webtopic")
    expect(page.locator("[data-tail]")).to_be_visible()
    page.goto(f"{web}/services/helloworld")
    call = page.locator('section[data-endpoint="Helloworld.Call"]')
    call.locator("form.fields input[name=name]").fill("csp")
    call.locator("form.fields button[type=submit]").click()
    expect(call.locator(".answer")).to_contain_text("Hello csp")
    stream = page.locator('section[data-endpoint="Helloworld.Stream"]')
    stream.locator("form.fields input[name=count]").fill("2")
    stream.locator("form.fields button[type=submit]").click()
    expect(stream.locator(".answer")).to_contain_text("end of stream")
    assert broken == []


def test_a_stale_login_form_is_refused_and_shown_again(
    micro_server: MicroServerProcess, page: Any
) -> None:
    page.goto(f"{micro_server.web}/login")
    page.context.clear_cookies()  # the form's nonce is gone: as after an hour
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", micro_server.admin_password)
    page.click("button[type=submit]")
    assert "stale" in page.locator("[role=alert]").inner_text()
    assert page.input_value("input[name=username]") == "admin"
    page.fill("input[name=password]", micro_server.admin_password)  # the new form works
    page.click("button[type=submit]")
    page.wait_for_url("**/services")


def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    """A POST: its status and every cookie it sets."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, [v for k, v in response.getheaders() if k == "set-cookie"]
    finally:
        conn.close()


def _login_form(web: str) -> tuple[str, str]:
    """The login page's nonce cookie and the token of its form."""
    _, headers, body = http("GET", f"{web}/login")
    cookie = headers["set-cookie"].split(";")[0]
    found = re.search(rb'name="csrf" value="([^"]+)"', body)
    assert found is not None
    return cookie, found.group(1).decode()


def test_behind_a_proxy_the_configured_origin_is_the_dashboards(tmp_path: Path) -> None:
    """``MICRO_WEB_ORIGIN=https://...``: posts from it pass (the request itself is plain
    HTTP from the proxy) and get ``__Host-`` Secure cookies; the direct origin is another."""
    server = start_server(tmp_path / "home", env={"MICRO_WEB_ORIGIN": "https://micro.example"})
    try:
        web = server.web
        cookie, token = _login_form(web)
        form = f"username=admin&password={server.admin_password}&csrf={token}"
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        status, _ = _post(f"{web}/login", form, {**headers, "Origin": web})
        assert status == 403
        status, cookies = _post(
            f"{web}/login", form, {**headers, "Origin": "https://micro.example"}
        )
        assert status == 303
        assert [c for c in cookies if c.startswith("__Host-micro-session=") and "Secure" in c]
    finally:
        server.stop()
