"""The config page: the tree as dotted paths, setting values and secrets, deleting."""

from __future__ import annotations

from typing import Any

from tests._support import ok
from tests.web.conftest import log_in, screenshot

from micro.testing import MicroServerProcess

SECRET = "hunter2-not-for-browsers"


def set_value(
    page: Any, path: str, value: str, *, kind: str = "auto", secret: bool = False
) -> None:
    form = page.locator("form[action='/config/set']")
    form.locator("input[name=path]").fill(path)
    form.locator("textarea[name=value]").fill(value)
    form.locator("select[name=as]").select_option(kind)
    form.locator("input[name=secret]").set_checked(secret)
    form.get_by_role("button", name="Set").click()


def value_of(page: Any, path: str) -> str:
    text: str = page.locator(f"tr[data-path='{path}'] td.value").inner_text()
    return text


def test_set_secret_and_delete(page: Any, micro_server: MicroServerProcess) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/config")
    set_value(page, "db", '{"host": "10.0.0.1", "port": 5432}')
    page.wait_for_url("**/config")
    set_value(page, "db.note", "<i>5432</i>", kind="text")
    set_value(page, "db.password", SECRET, secret=True)
    assert value_of(page, "db.host") == "10.0.0.1"
    assert value_of(page, "db.port") == "5432"
    assert value_of(page, "db.note") == "<i>5432</i>"
    assert value_of(page, "db.password") == "••••••"
    # the secret is stored (the CLI reveals it) but never sent to the browser
    assert ok(micro_server.micro("config", "get", "db.password", "--secret")) == SECRET + "\n"
    assert SECRET not in page.content()
    screenshot(page, "config")

    page.locator("tr[data-path='db.note']").get_by_role("button", name="Delete").click()
    page.wait_for_url("**/config")
    assert page.locator("tr[data-path='db.note']").count() == 0
    page.fill("input[aria-label='path to delete']", "db")
    page.locator("input[aria-label='path to delete']").press("Enter")
    page.wait_for_url("**/config")
    assert page.locator("tr[data-path]").count() == 0


def test_bad_json_is_said_on_the_form(page: Any, micro_server: MicroServerProcess) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/config")
    set_value(page, "a", "{not json", kind="json")
    assert "not JSON" in page.locator("[role=alert]").inner_text()
    assert page.input_value("form[action='/config/set'] textarea[name=value]") == "{not json"
    set_value(page, "a..b", SECRET, secret=True)
    assert "empty part" in page.locator("[role=alert]").inner_text()
    assert SECRET not in page.content()  # a refused secret is not echoed back either
