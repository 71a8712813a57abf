"""The store pages: databases, tables, keys, a record; writing and deleting."""

from __future__ import annotations

from typing import Any

from tests._support import ok
from tests.web.conftest import log_in, screenshot

from micro.testing import MicroServerProcess


def write(page: Any, key: str, value: str, *, expiry: str = "", encoding: str = "text") -> None:
    page.fill("form.write input[name=key]", key)
    page.fill("textarea[name=value]", value)
    page.fill("form.write input[name=expiry]", expiry)
    page.select_option("select[name=encoding]", encoding)
    page.get_by_role("button", name="Write").click()


def test_write_read_list_and_delete(page: Any, micro_server: MicroServerProcess) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/store")
    page.get_by_role("link", name="micro", exact=True).click()
    page.wait_for_url("**/store/micro")
    page.fill("input[name=table]", "webtest")
    page.get_by_role("button", name="Open").click()
    page.wait_for_url("**/store/micro/webtest")

    write(page, "greeting", "hello <b>world</b>", expiry="1h")
    page.wait_for_url("**/store/micro/webtest/record?key=greeting")
    assert page.locator("#value").inner_text() == "hello <b>world</b>"
    assert "expires in 1h" in page.locator("main").inner_text() or "expires in 59m" in (
        page.locator("main").inner_text()
    )
    read = ok(micro_server.micro("store", "read", "greeting", "--table", "webtest"))
    assert read == "hello <b>world</b>\n"

    page.goto(f"{micro_server.web}/store/micro/webtest")
    write(page, "bin", "/wA=", encoding="base64")
    page.wait_for_url("**/record?key=bin")
    assert page.locator("#value-base64").inner_text() == "/wA="
    assert page.locator("#value-hex").inner_text() == "ff 00"

    page.goto(f"{micro_server.web}/store/micro/webtest")
    assert page.locator("tr[data-key]").count() == 2
    page.fill("input[name=prefix]", "gre")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/store/micro/webtest?prefix=gre")
    assert page.locator("tr[data-key]").count() == 1
    screenshot(page, "store")

    page.locator("tr[data-key=greeting]").get_by_role("button", name="Delete").click()
    page.wait_for_url("**/store/micro/webtest")
    assert page.locator("tr[data-key=greeting]").count() == 0
    assert page.locator("tr[data-key=bin]").count() == 1
    assert ok(micro_server.micro("store", "list", "--table", "webtest")) == "bin\n"


def test_bad_input_is_said_on_the_form(page: Any, micro_server: MicroServerProcess) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/store/micro/webtest")
    write(page, "k", "v", expiry="soon")
    assert "invalid expiry" in page.locator("[role=alert]").inner_text()
    assert page.input_value("textarea[name=value]") == "v"
    write(page, "k", "not base64!", encoding="base64")
    assert "not valid base64" in page.locator("[role=alert]").inner_text()


def test_the_platforms_tables_are_refused(page: Any, micro_server: MicroServerProcess) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/store/micro/auth")
    assert page.locator("h1.error-title").inner_text() == "403 Forbidden"
