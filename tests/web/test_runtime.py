"""The runtime pages: run a service from git, watch it come up, read and follow its logs,
kill it; and a plain user's Kill refused by the platform."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from tests._support import git, ok
from tests.web.conftest import log_in, screenshot

from micro.testing import MicroServerProcess

PROBE = textwrap.dedent(
    """
    import msgspec

    import micro


    class Text(msgspec.Struct):
        text: str


    class Probe:
        async def say(self, req: Text) -> Text:
            print(req.text, flush=True)
            return req


    service = micro.Service("webprobe")
    service.handle(Probe())
    service.run()
    """
)


def bare_repo(tmp_path: Path) -> Path:
    """A bare git repository of the probe service (what ``micro run file://...`` clones)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.py").write_text(PROBE)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "probe")
    bare = tmp_path / "webprobe.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def row(page: Any, name: str) -> Any:
    return page.locator(f"tr[data-service='{name}']")


def test_run_follow_logs_and_kill(
    page: Any, micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url = f"file://{bare_repo(tmp_path)}"
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/runtime")
    page.fill("input[name=source]", url)
    page.fill("textarea[name=env]", "GREETING=hi")
    page.click("form[action='/runtime/run'] button[type=submit]")
    page.wait_for_url("**/runtime")
    # the table refreshes itself while the service builds and starts
    expect(row(page, "webprobe").locator("td.status")).to_have_text("running", timeout=90_000)
    cells = row(page, "webprobe").locator("td")
    assert cells.nth(1).inner_text() == "latest"
    assert cells.nth(2).inner_text() == url
    assert "owner=admin" in cells.nth(6).inner_text()
    assert "env=GREETING" in cells.nth(6).inner_text()
    screenshot(page, "runtime")

    row(page, "webprobe").get_by_role("link", name="Logs").click()
    page.wait_for_url("**/runtime/webprobe/logs?version=latest")
    logs = page.locator("#logs")
    expect(logs).to_contain_text("Registered [service] webprobe", timeout=15_000)
    # a line printed now arrives through the live tail
    ok(micro_server.micro("call", "webprobe", "Probe.Say", '{"text": "said <b>after</b>"}'))
    expect(logs).to_contain_text("said <b>after</b>", timeout=15_000)
    assert logs.inner_text().count("said <b>after</b>") == 1
    screenshot(page, "runtime-logs")

    page.goto(f"{micro_server.web}/runtime")
    build = row(page, "webprobe").locator("td").nth(4).inner_text()
    row(page, "webprobe").get_by_role("button", name="Update").click()
    page.wait_for_url("**/runtime")
    expect(row(page, "webprobe").locator("td.status")).to_have_text("running", timeout=90_000)
    assert row(page, "webprobe").locator("td").nth(4).inner_text() == build  # same source

    row(page, "webprobe").get_by_role("button", name="Kill").click()
    page.wait_for_url("**/runtime")
    expect(row(page, "webprobe")).to_have_count(0)
    assert "webprobe" not in ok(micro_server.micro("status"))


def test_a_bad_source_is_said_on_the_form(page: Any, micro_server: MicroServerProcess) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/runtime")
    page.fill("input[name=source]", "/home/me/project")
    page.click("form[action='/runtime/run'] button[type=submit]")
    alert = page.locator("[role=alert]").inner_text()
    assert "is not a git URL" in alert
    assert page.input_value("input[name=source]") == "/home/me/project"


def test_a_plain_user_may_not_kill(
    page: Any, micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    ok(micro_server.micro("run", f"file://{bare_repo(tmp_path)}", timeout=120))
    ok(micro_server.micro("auth", "create", "account", "bob", "--secret", "x"))
    log_in(page, micro_server, username="bob", password="x")
    page.goto(f"{micro_server.web}/runtime")
    assert row(page, "webprobe").locator("td.status").inner_text() == "running"
    row(page, "webprobe").get_by_role("button", name="Kill").click()
    assert page.locator("h1.error-title").inner_text() == "403 Forbidden"
    assert "admin access required" in page.locator("[role=alert]").inner_text()
    screenshot(page, "forbidden")
    assert re.search(r"webprobe\s+latest\s+\S+\s+running", ok(micro_server.micro("status")))
