"""The accounts page: accounts and rules, created and deleted; admins only."""

from __future__ import annotations

from typing import Any

from tests._support import ok
from tests.web.conftest import csrf_of, log_in, screenshot

from micro.testing import MicroServerProcess


def test_create_and_delete_a_rule_and_an_account(
    micro_server: MicroServerProcess, page: Any
) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/accounts")
    assert page.locator("tr[data-account=admin]").inner_text().split("\t")[:4] == [
        "admin", "admin", "user", "admin"
    ]  # fmt: skip
    assert page.locator("tr[data-account=admin] button").count() == 0  # not one's own

    rule = page.locator("form.rule-form")
    rule.locator("input[name=id]").fill("no-probe")
    rule.locator("input[name=scope]").fill("*")
    rule.locator("input[name=resource]").fill("service:probe:*")
    rule.locator("select[name=access]").select_option("denied")
    rule.locator("input[name=priority]").fill("10")
    rule.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/accounts")
    cells = page.locator("tr[data-rule=no-probe] td").all_inner_texts()
    assert cells[:5] == ["no-probe", "*", "DENIED", "service:probe:*", "10"]
    assert "no-probe" in ok(micro_server.micro("auth", "list", "rules"))

    account = page.locator("form.account-form")
    account.locator("input[name=id]").fill("carol")
    account.locator("input[name=scopes]").fill("reader, <writer>")
    account.get_by_role("button", name="Create account").click()
    secret = page.locator("#secret").inner_text()
    assert len(secret) >= 16
    cells = page.locator("tr[data-account=carol] td").all_inner_texts()
    assert cells[:4] == ["carol", "carol", "user", "reader, <writer>"]
    screenshot(page, "accounts")
    # the secret works, and is never shown again
    ok(micro_server.micro("auth", "create", "token", "--id", "carol", "--secret", secret))
    page.goto(f"{micro_server.web}/accounts")
    assert secret not in page.content()

    page.locator("tr[data-account=carol]").get_by_role("button", name="Delete").click()
    page.wait_for_url("**/accounts")
    assert page.locator("tr[data-account=carol]").count() == 0
    page.locator("tr[data-rule=no-probe]").get_by_role("button", name="Delete").click()
    page.wait_for_url("**/accounts")
    assert page.locator("tr[data-rule=no-probe]").count() == 0
    assert "no-probe" not in ok(micro_server.micro("auth", "list", "rules"))


def test_a_bad_rule_is_said_on_the_form(micro_server: MicroServerProcess, page: Any) -> None:
    log_in(page, micro_server)
    page.goto(f"{micro_server.web}/accounts")
    rule = page.locator("form.rule-form")
    rule.locator("input[name=id]").fill("bad")
    rule.locator("input[name=resource]").fill("service:probe")
    rule.get_by_role("button", name="Create rule").click()
    assert "type:name:endpoint" in page.locator("[role=alert]").inner_text()
    assert page.input_value("form.rule-form input[name=id]") == "bad"


def test_only_admins_see_accounts(micro_server: MicroServerProcess, page: Any) -> None:
    ok(micro_server.micro("auth", "create", "account", "bob", "--secret", "x"))
    log_in(page, micro_server, username="bob", password="x")
    page.goto(f"{micro_server.web}/accounts")
    assert page.locator("h1.error-title").inner_text() == "403 Forbidden"
    # and the platform refuses the changes themselves, whatever the page shows
    csrf = csrf_of(page)
    response = page.request.post(
        f"{micro_server.web}/accounts/rules/create",
        form={"csrf": csrf, "id": "mine", "resource": "service:*:*", "access": "granted"},
    )
    assert response.status == 403
    assert "admin access required" in response.text()
