"""The metrics page in a real browser against a real server: each service of the
namespace with its rate, errors and p50/p99, read through the service's Debug.Metrics."""

from __future__ import annotations

from typing import Any

from tests._support import HELLOWORLD, http
from tests.web.conftest import log_in, screenshot

from micro.testing import MicroServerProcess
from micro.web.pages.metrics import rate

WAIT = 15_000


def test_the_page_shows_rate_and_latency_per_service(
    micro_server: MicroServerProcess, page: Any
) -> None:
    from playwright.sync_api import expect

    micro_server.start_service(HELLOWORLD, name="helloworld")
    for _ in range(3):
        assert (
            http("POST", f"{micro_server.api}/helloworld/Helloworld/Call", '{"name": "a"}')[0]
            == 200
        )
    assert http("POST", f"{micro_server.api}/helloworld/Helloworld/Call", "[")[0] == 400
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/metrics")
    row = page.locator("#metrics tbody tr.service", has_text="helloworld")
    cells = row.locator("td")
    expect(cells.nth(2)).to_have_text("3", timeout=WAIT)  # the 400 was the gateway's, not a call
    expect(cells.nth(3)).to_have_text("0")
    assert float(cells.nth(1).inner_text()) > 0
    assert float(cells.nth(4).inner_text()) > 0  # p50 in ms
    assert float(cells.nth(5).inner_text()) >= float(cells.nth(4).inner_text())
    endpoint = page.locator("#metrics tbody tr.endpoint", has_text="Helloworld.Call")
    expect(endpoint).to_have_count(1)
    expect(page.locator("#metrics tbody tr.service", has_text="registry")).to_have_count(0)
    screenshot(page, "metrics")


def test_rate_is_since_the_last_sample_of_the_same_node() -> None:
    key = ("ns", "svc", 100.0)
    assert rate(key, 110.0, 100.0, 50) == 5.0  # first look: since the node started
    assert rate(key, 120.0, 100.0, 150) == 10.0
    assert rate(("ns", "svc", 200.0), 210.0, 200.0, 5) == 0.5  # a restarted node starts over
