"""Issue 14, item 5 (the gateway's part): a page on another port of the same host must not
act as the user logged in to the dashboard.

The victim logs in to the dashboard in a real browser (headless Chromium), so the browser
holds the dashboard's session cookies for 127.0.0.1, which it sends to every port of that
host, the gateway's included. The attacker's page, served from yet another port of
127.0.0.1, then asks the gateway to create an admin account with
``fetch(..., {credentials: 'include'})``, both as a CORS request (preflighted) and as a
``no-cors`` one (sent without asking, its answer unreadable). Neither may create it.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests._support import backend_missing

from micro.testing import MicroServerProcess

_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]

ATTACK = """<!doctype html>
<title>cat pictures</title>
<script>
async function attack(api, account) {
  const body = JSON.stringify({id: account, secret: "owned-123", scopes: ["admin"]});
  const out = {};
  try {
    const answer = await fetch(api + "/auth/Auth/Generate", {
      method: "POST", credentials: "include",
      headers: {"content-type": "application/json"}, body});
    out.cors = answer.status + " " + await answer.text();
  } catch (error) {
    out.cors = "refused: " + error;
  }
  try {
    await fetch(api + "/auth/Auth/Generate", {
      method: "POST", mode: "no-cors", credentials: "include",
      headers: {"content-type": "text/plain"}, body});
    out.no_cors = "sent";
  } catch (error) {
    out.no_cors = "refused: " + error;
  }
  return out;
}
</script>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (never Playwright's own download)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        backend_missing("playwright is not installed (the dev extra)")
    executable = shutil.which("chromium")
    if executable is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True,
                       timeout=900, check=False)  # fmt: skip
        executable = shutil.which("chromium")
    if executable is None:
        backend_missing("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def attacker_site() -> Iterator[str]:
    """The attacker's page, on a port of 127.0.0.1 of its own."""
    page = ATTACK.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_page_on_another_port_cannot_use_the_dashboard_login(
    micro_server: MicroServerProcess, browser: Any, attacker_site: str
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        # The victim logs in to the dashboard.
        page.goto(f"{micro_server.web}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", micro_server.admin_password)
        page.fill("input[name=namespace]", "micro")
        page.click("button[type=submit]")
        page.wait_for_url("**/services**")
        sent = [c["name"] for c in context.cookies(micro_server.api)]
        assert [n for n in sent if n.lower().startswith(("micro-", "__host-micro-"))], sent
        # The victim visits the attacker's page.
        account = f"evil{secrets.token_hex(3)}"
        page.goto(attacker_site)
        outcome = page.evaluate("([api, account]) => attack(api, account)",
                                [micro_server.api, account])  # fmt: skip
    finally:
        context.close()
    assert outcome["cors"].startswith("refused"), outcome  # no CORS answer lets it read
    listed = micro_server.micro("auth", "list", "accounts")
    assert listed.returncode == 0, listed.stderr
    assert account not in listed.stdout, (outcome, listed.stdout)
    _gateway_still_serves(micro_server)


def _gateway_still_serves(server: MicroServerProcess) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{server.api}/", timeout=10) as answer:
        assert "version" in json.loads(answer.read())
