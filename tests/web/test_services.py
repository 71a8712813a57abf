"""The services pages in a real browser against a real server: the list, a service's page,
calling an endpoint and a server stream from their forms, errors in the answer box, and
answers shown as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests._support import HELLOWORLD, ok
from tests.web.conftest import csrf_of, log_in, screenshot

from micro.testing import MicroServerProcess
from micro.web.pages.services import _rows

WAIT = 15_000
"""Milliseconds an expectation waits (as the page fixture's default timeout)."""


@pytest.fixture
def server(micro_server: MicroServerProcess) -> MicroServerProcess:
    micro_server.start_service(HELLOWORLD, name="helloworld")
    return micro_server


ORDERS = """
from typing import Literal

import msgspec

import micro


class Address(msgspec.Struct):
    street: str
    number: int


class Order(msgspec.Struct):
    customer: str
    quantity: int
    home: Address
    express: bool = False
    size: Literal["s", "m", "l"] = "m"
    tags: list[str] = []
    extra: dict[str, int] = {}
    note: str | None = None
    gift: Address | None = None


class Orders:
    async def place(self, req: Order) -> Order:
        return req


service = micro.Service("orders")
service.handle(Orders())
service.run()
"""
"""A service whose request has a field of every kind: it answers with what it got."""


def endpoint(page: Any, name: str) -> Any:
    """The section of one endpoint on a service's page."""
    return page.locator(f'section[data-endpoint="{name}"]')


def open_helloworld(page: Any, server: MicroServerProcess) -> None:
    log_in(page, server)
    page.goto(f"{server.web}/services/helloworld")


def raw_json(section: Any, text: str) -> None:
    """Send ``text`` from the endpoint's raw JSON form."""
    section.locator("details.raw summary").click()
    section.locator("textarea[name=request]").fill(text)
    section.locator("details.raw button[type=submit]").click()


def test_the_list_has_one_row_per_name_and_copes_with_names_only() -> None:
    rows = _rows(
        [
            {"name": "b", "version": "v2", "nodes": [{"id": "1"}, {"id": "2"}]},
            {"name": "b", "nodes": [{"id": "3"}]},  # "latest", left out on the wire
            {"name": "a"},  # a registry that lists names only
        ]
    )
    assert [(r.name, r.versions, r.nodes) for r in rows] == [
        ("a", [], None),
        ("b", ["v2", "latest"], 3),
    ]


def test_list_service_and_call(page: Any, server: MicroServerProcess) -> None:
    from playwright.sync_api import expect

    log_in(page, server)
    row = page.locator("#services tbody tr", has_text="helloworld")
    expect(row.locator("td")).to_have_text(["helloworld", "latest", "1"], timeout=WAIT)
    # the platform's own services are listed too (the micro namespace)
    expect(page.locator("#services tbody tr", has_text="registry")).to_have_count(1)
    screenshot(page, "services")
    page.fill("input[data-filter]", "hello")
    expect(page.locator("#services tbody tr:visible")).to_have_count(1)

    page.click("#services a:text-is('helloworld')")
    page.wait_for_url("**/services/helloworld")
    expect(page.locator("h1")).to_have_text("helloworld")
    expect(page.locator("table.nodes tbody tr")).to_have_count(1)
    node = page.locator("table.nodes tbody tr td")
    expect(node.nth(1)).to_contain_text("127.0.0.1:")
    expect(page.locator("section.endpoint h3")).to_contain_text(
        ["Helloworld.Call", "Helloworld.PingPong", "Helloworld.Stream"]
    )
    # a bidi stream has no form, and says where to call it
    ping = endpoint(page, "Helloworld.PingPong")
    expect(ping.locator("form")).to_have_count(0)
    expect(ping.locator(".note")).to_contain_text("/helloworld/Helloworld/PingPong")
    screenshot(page, "service-helloworld")

    call = endpoint(page, "Helloworld.Call")
    call.locator("form.fields input[name=name]").fill("Ada")
    call.locator("form.fields button[type=submit]").click()
    expect(call.locator(".answer pre")).to_have_text('{\n  "msg": "Hello Ada"\n}', timeout=WAIT)
    screenshot(page, "service-call-answer")

    # the raw JSON form calls the same endpoint
    raw_json(call, '{"name": "Grace"}')
    expect(call.locator(".answer pre")).to_have_text('{\n  "msg": "Hello Grace"\n}', timeout=WAIT)


def test_a_server_stream_shows_each_message(page: Any, server: MicroServerProcess) -> None:
    from playwright.sync_api import expect

    open_helloworld(page, server)
    stream = endpoint(page, "Helloworld.Stream")
    stream.locator("form.fields input[name=count]").fill("3")
    stream.locator("form.fields button[type=submit]").click()
    answer = stream.locator(".answer")
    expect(answer).to_contain_text("-- end of stream: 3 messages --", timeout=WAIT)
    screenshot(page, "service-stream-answer")
    text = answer.inner_text()
    assert [line for line in text.splitlines() if '"count"' in line] == [
        '  "count": 0',
        '  "count": 1',
        '  "count": 2',
    ]


def test_wrong_values_show_the_error_in_the_answer_box(
    page: Any, server: MicroServerProcess
) -> None:
    from playwright.sync_api import expect

    open_helloworld(page, server)
    call = endpoint(page, "Helloworld.Call")
    raw_json(call, '{"name":')
    error = call.locator(".answer .answer-error")
    expect(error).to_contain_text("400 Bad Request", timeout=WAIT)
    expect(error).to_contain_text("the request is not valid JSON")

    # the service's own validation, for a stream: shown before any message
    stream = endpoint(page, "Helloworld.Stream")
    raw_json(stream, '{"count": "abc"}')
    error = stream.locator(".answer .answer-error")
    expect(error).to_contain_text("400 Bad Request", timeout=WAIT)
    expect(error).to_contain_text("count")
    screenshot(page, "service-call-error")

    # a number field cannot take "abc" in the browser; the dashboard refuses it too
    csrf = csrf_of(page)
    response = page.request.post(
        f"{server.web}/services/helloworld/stream?endpoint=Helloworld.Stream",
        form={"count": "abc"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 200
    assert "400 Bad Request" in response.text()
    assert "count: &#39;abc&#39; is not a whole number" in response.text()

    # a refusal by the dashboard itself (a stale form) shows in the answer box too
    page.evaluate("""document.body.setAttribute("hx-headers", '{"X-CSRF-Token": "stale"}')""")
    call.locator("form.fields button[type=submit]").click()
    expect(call.locator(".answer")).to_contain_text("403 Forbidden", timeout=WAIT)
    expect(call.locator(".answer")).to_contain_text("CSRF")
    stream.locator("form.fields input[name=count]").fill("1")
    stream.locator("form.fields button[type=submit]").click()
    expect(stream.locator(".answer")).to_contain_text("403 Forbidden", timeout=WAIT)


def test_answers_are_shown_as_text(page: Any, server: MicroServerProcess) -> None:
    from playwright.sync_api import expect

    open_helloworld(page, server)
    call = endpoint(page, "Helloworld.Call")
    name = '<script>window.ran = 1</script><img src=x onerror="window.ran = 2">'
    call.locator("form.fields input[name=name]").fill(name)
    call.locator("form.fields button[type=submit]").click()
    pre = call.locator(".answer pre")
    expect(pre).to_contain_text(f'"msg": "Hello {name.replace(chr(34), chr(92) + chr(34))}"')
    expect(call.locator(".answer script, .answer img")).to_have_count(0)
    assert page.evaluate("window.ran") is None


def test_a_forbidden_call_shows_the_error(page: Any, server: MicroServerProcess) -> None:
    from playwright.sync_api import expect

    # only admins may call helloworld; bob is a plain user
    ok(server.micro("auth", "create", "rule", "hw-admin", "--scope", "admin", "--priority",
                    "30", "--resource", "service:helloworld:*"))  # fmt: skip
    ok(server.micro("auth", "create", "rule", "hw-deny", "--scope", "", "--access", "denied",
                    "--priority", "20", "--resource", "service:helloworld:*"))  # fmt: skip
    ok(server.micro("auth", "create", "account", "bob", "--secret", "x"))
    log_in(page, server, username="bob", password="x")
    page.goto(f"{server.web}/services/helloworld")
    call = endpoint(page, "Helloworld.Call")
    call.locator("form.fields input[name=name]").fill("Bob")
    call.locator("form.fields button[type=submit]").click()
    error = call.locator(".answer .answer-error")
    expect(error).to_contain_text("403 Forbidden", timeout=WAIT)
    stream = endpoint(page, "Helloworld.Stream")
    stream.locator("form.fields input[name=count]").fill("1")
    stream.locator("form.fields button[type=submit]").click()
    expect(stream.locator(".answer .answer-error")).to_contain_text("403 Forbidden", timeout=WAIT)


def test_an_unknown_service_is_a_404_page(page: Any, server: MicroServerProcess) -> None:
    from playwright.sync_api import expect

    log_in(page, server)
    response = page.goto(f"{server.web}/services/nothing-here")
    assert response is not None
    assert response.status == 404
    expect(page.locator(".error-title")).to_have_text("404 Not Found")


def test_every_kind_of_field_reaches_the_service_typed(
    page: Any, server: MicroServerProcess, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    main = tmp_path / "orders.py"
    main.write_text(ORDERS)
    server.start_service(main, name="orders")
    log_in(page, server)
    page.goto(f"{server.web}/services/orders")
    place = endpoint(page, "Orders.Place")
    form = place.locator("form.fields")
    expect(form.locator("fieldset legend")).to_have_count(2)  # home, gift
    form.locator("[name=customer]").fill("<b>Ann</b>")
    form.locator("[name=quantity]").fill("2")
    form.locator("[name='home.street']").fill("Main St")
    form.locator("[name='home.number']").fill("7")
    form.locator("[name=express]").check()
    form.locator("[name=size]").select_option("l")
    form.locator("[name=tags]").fill("red, large\nfragile")
    form.locator("[name=extra]").fill('{"floor": 3}')
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "service-form-phone")
    form.locator("button[type=submit]").click()
    pre = place.locator(".answer pre")
    expect(pre).to_be_visible(timeout=WAIT)
    assert json.loads(pre.inner_text()) == {
        "customer": "<b>Ann</b>",
        "quantity": 2,
        "home": {"street": "Main St", "number": 7},
        "express": True,
        "size": "l",
        "tags": ["red, large", "fragile"],
        "extra": {"floor": 3},
        "note": None,  # left empty: left out, the default applied
        "gift": None,
    }
    expect(place.locator(".answer b")).to_have_count(0)
