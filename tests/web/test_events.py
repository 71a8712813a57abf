"""The events pages: topics, a topic's recent events (older ones paged), the live tail."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests._support import ok
from tests.web.conftest import log_in, screenshot

from micro.testing import MicroServerProcess


def publish(server: MicroServerProcess, topic: str, payload: str) -> int:
    event = json.loads(ok(server.micro("events", "publish", topic, payload)))
    sequence: int = event["sequence"]
    return sequence


def test_topics_recent_events_and_live_tail(micro_server: MicroServerProcess, page: Any) -> None:
    from playwright.sync_api import expect

    publish(micro_server, "web.orders", '{"order": 1}')
    publish(micro_server, "web.orders", "<script>alert(1)</script>")
    reset = micro_server.micro("events", "reset", "web.orders", "billing", "--offset", "1")
    assert reset.returncode == 0, reset.stderr
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/events")
    page.get_by_role("link", name="web.orders").click()
    page.wait_for_url("**/events/web.orders")
    rows = page.locator("table.events tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td.payload").inner_text() == '{"order":1}'
    assert rows.nth(1).locator("td.payload").inner_text() == "<script>alert(1)</script>"
    group = page.locator("#groups tbody tr td")
    assert [group.nth(i).inner_text() for i in range(4)] == ["billing", "1", "0", "2"]

    tail = page.locator("#tail")
    # the tail starts after the events shown: nothing until the next one
    sequence = publish(micro_server, "web.orders", '{"order": 3}')
    expect(tail).to_contain_text(f"#{sequence}  ", timeout=15_000)
    expect(tail).to_contain_text('{"order":3}')
    assert '{"order":1}' not in tail.inner_text()
    screenshot(page, "events")


PUBLISH_MANY = """
import asyncio, sys
import micro.events

async def main() -> None:
    for n in range(1, int(sys.argv[2]) + 1):
        await micro.events.publish(sys.argv[1], n)

asyncio.run(main())
"""


def test_the_newest_page_and_older_ones(micro_server: MicroServerProcess, page: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PUBLISH_MANY, "web.many", "120"],
        env=micro_server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/events/web.many")
    sequences = page.locator("table.events tbody tr td:first-child")
    assert sequences.all_inner_texts() == [str(n) for n in range(71, 121)]
    page.get_by_role("link", name="Older").click()
    page.wait_for_url("**/events/web.many?from=21")
    assert sequences.all_inner_texts() == [str(n) for n in range(21, 71)]
    assert page.locator("#tail").count() == 0  # no live tail on an older page
    page.get_by_role("link", name="Older").click()
    page.wait_for_url("**/events/web.many?from=1")
    assert sequences.all_inner_texts() == [str(n) for n in range(1, 51)]
    assert page.get_by_role("link", name="Older").count() == 0
    page.get_by_role("link", name="Newer").click()
    page.wait_for_url("**/events/web.many?from=51")
    assert sequences.all_inner_texts() == [str(n) for n in range(51, 101)]
    page.get_by_role("link", name="Newest").click()
    page.wait_for_url("**/events/web.many")
    assert sequences.all_inner_texts()[-1] == "120"


def test_open_a_topic_with_no_events(micro_server: MicroServerProcess, page: Any) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/events")
    page.fill("input[name=topic]", "nothing.here")
    page.get_by_role("button", name="Open").click()
    page.wait_for_url("**/events/nothing.here")
    assert "No events on this topic." in page.locator("table.events").inner_text()
