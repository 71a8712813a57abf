"""Logging in and out of the dashboard, and what a session protects."""

from __future__ import annotations

from typing import Any

from tests._support import http
from tests.web.conftest import log_in, screenshot

from micro.testing import MicroServerProcess


def test_every_page_but_login_needs_a_session(micro_server: MicroServerProcess) -> None:
    status, headers, _ = http("GET", f"{micro_server.web}/services")
    assert status == 303
    assert headers["location"] == "/login?next=%2Fservices"
    status, _, body = http("GET", f"{micro_server.web}/login")
    assert status == 200
    assert b"Log in to Micro" in body


def test_the_session_is_one_sealed_httponly_cookie(
    page: Any, micro_server: MicroServerProcess
) -> None:
    log_in(page, micro_server)
    cookies = {c["name"]: c for c in page.context.cookies()}
    # Chromium keeps Secure cookies on http://127.0.0.1, so the __Host- name is used there
    assert set(cookies) == {"__Host-micro-session"}
    cookie = cookies["__Host-micro-session"]
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert "eyJ" not in cookie["value"]  # no token in clear (a JWT starts so)
    assert page.evaluate("document.cookie") == ""  # scripts see none of it


def test_plain_http_off_loopback_gets_plain_cookie_names(
    micro_server: MicroServerProcess,
) -> None:
    """A browser drops Secure cookies on plain HTTP to another host: there the cookies
    have plain names and no Secure flag, else the session would never come back."""
    for host, name, secure in (
        ("dashboard.example:8082", "micro-login=", False),
        ("localhost:8082", "__Host-micro-login=", True),
    ):
        _, headers, _ = http("GET", f"{micro_server.web}/login", headers={"Host": host})
        cookie = headers["set-cookie"]
        assert cookie.startswith(name), host
        assert ("Secure" in cookie) is secure, host


def test_wrong_password_is_said_on_the_form(page: Any, micro_server: MicroServerProcess) -> None:
    page.goto(f"{micro_server.web}/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password"


def test_log_in_and_out(page: Any, micro_server: MicroServerProcess) -> None:
    log_in(page, micro_server)
    assert page.locator(".user").inner_text() == "admin"
    screenshot(page, "services")
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto(f"{micro_server.web}/services")
    page.wait_for_url("**/login?next=%2Fservices")


def test_a_post_without_the_csrf_token_is_refused(
    page: Any, micro_server: MicroServerProcess
) -> None:
    log_in(page, micro_server)
    response = page.request.post(f"{micro_server.web}/namespace", form={"namespace": "other"})
    assert response.status == 403
    assert "CSRF" in response.text()
    wrong = page.request.post(
        f"{micro_server.web}/namespace", form={"namespace": "other", "csrf": "guess"}
    )
    assert wrong.status == 403
