"""Issue 14, item 5 (the gateway's part): a page on another port of the same host must not
act as the user logged in to the dashboard.

The victim logs in to the dashboard in a real browser (headless Chromium), so the browser
holds the dashboard's session cookies for 127.0.0.1, which it sends to every port of that
host, the gateway's included. The attacker's page, served from yet another port of
127.0.0.1 (:mod:`tests.security._site`), then asks the gateway to create an admin account
with ``fetch(..., {credentials: 'include'})``, both as a CORS request (preflighted) and as a
``no-cors`` one (sent without asking, its answer unreadable). Neither may create it.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests._support import ok
from tests.security._site import attacker_site
from tests.web.conftest import log_in

from micro.testing import MicroServerProcess

ATTACK = """<script>
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
</script>"""


def test_a_page_on_another_port_cannot_use_the_dashboard_login(
    micro_server: MicroServerProcess, page: Any
) -> None:
    log_in(page, micro_server)
    sent = [c["name"] for c in page.context.cookies(micro_server.api)]
    assert [n for n in sent if n.lower().startswith(("micro-", "__host-micro-"))], sent
    account = f"evil{secrets.token_hex(3)}"
    with attacker_site() as site:
        page.goto(site.page("/", ATTACK))
        outcome = page.evaluate("([api, account]) => attack(api, account)",
                                [micro_server.api, account])  # fmt: skip
    assert outcome["cors"].startswith("refused"), outcome  # no CORS answer lets it read
    assert account not in ok(micro_server.micro("auth", "list", "accounts")), outcome
