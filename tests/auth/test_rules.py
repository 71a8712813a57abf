"""Micro's rule verification (reference §6.4), branch by branch."""

from __future__ import annotations

import pytest

from micro.auth.base import DEFAULT_RULE, Account, Resource, Rule
from micro.auth.rules import endpoint_matches, verify

HELLO = Resource("service", "greeter", "Greeter.Hello")
ALICE = Account(id="alice", issuer="team", scopes=["dev"])
ADMIN = Account(id="root", issuer="team", scopes=["admin"])
STRANGER = Account(id="eve", issuer="other", scopes=["dev", "admin"])


def rule(
    id: str,
    scope: str,
    access: str = "granted",
    priority: int = 0,
    resource: str = "*:*:*",
) -> Rule:
    return Rule(
        id=id,
        resource=Resource.parse(resource),
        scope=scope,
        access=access,  # type: ignore[arg-type]
        priority=priority,
    )


def test_no_rules_is_forbidden_for_everyone() -> None:
    for account in (None, ALICE, ADMIN):
        assert not verify([], account, HELLO, "team")


def test_the_default_rule_lets_everyone_in() -> None:
    for account in (None, ALICE, STRANGER):
        assert verify([DEFAULT_RULE], account, HELLO, "team")


def test_public_deny_decides_even_for_accounts() -> None:
    rules = [rule("deny", "", "denied", priority=1), rule("all", "*")]
    assert not verify(rules, None, HELLO, "team")
    assert not verify(rules, ADMIN, HELLO, "team")


def test_public_grant_decides_even_for_another_namespace() -> None:
    assert verify([rule("public", "")], STRANGER, HELLO, "team")


def test_without_an_account_only_public_rules_count() -> None:
    rules = [rule("any", "*", priority=10), rule("plus", "+", priority=5), rule("dev", "dev")]
    assert not verify(rules, None, HELLO, "team")
    assert verify([*rules, rule("public", "", priority=-1)], None, HELLO, "team")


def test_star_is_any_account_of_this_namespace() -> None:
    rules = [rule("any", "*")]
    assert verify(rules, ALICE, HELLO, "team")
    assert not verify(rules, STRANGER, HELLO, "team")
    assert not verify(rules, None, HELLO, "team")


def test_plus_is_any_account_of_any_namespace() -> None:
    rules = [rule("plus", "+")]
    assert verify(rules, ALICE, HELLO, "team")
    assert verify(rules, STRANGER, HELLO, "team")
    assert not verify(rules, None, HELLO, "team")
    assert not verify([rule("plus", "+", "denied")], STRANGER, HELLO, "team")


def test_a_named_scope_must_be_held() -> None:
    rules = [rule("admins", "admin")]
    assert verify(rules, ADMIN, HELLO, "team")
    assert not verify(rules, ALICE, HELLO, "team")


def test_another_namespaces_account_is_forbidden_at_the_first_scoped_rule() -> None:
    # eve holds "admin", but in another namespace: the scoped rule forbids at once,
    # before the lower "+" grant is reached.
    rules = [rule("admins", "admin", priority=2), rule("plus", "+", priority=1)]
    assert not verify(rules, STRANGER, HELLO, "team")
    assert verify(rules, ADMIN, HELLO, "team")


def test_a_scope_not_held_falls_through_to_the_next_rule() -> None:
    rules = [rule("admins", "admin", "denied", priority=9), rule("any", "*", priority=1)]
    assert verify(rules, ALICE, HELLO, "team")
    assert not verify(rules, ADMIN, HELLO, "team")


def test_higher_priority_decides_first() -> None:
    grant, deny = rule("g", "*", priority=10), rule("d", "*", "denied", priority=5)
    assert verify([deny, grant], ALICE, HELLO, "team")
    low_grant = rule("g", "*", priority=1)
    assert not verify([low_grant, deny], ALICE, HELLO, "team")


def test_equal_priority_keeps_the_given_order() -> None:
    grant, deny = rule("g", "*"), rule("d", "*", "denied")
    assert verify([grant, deny], ALICE, HELLO, "team")
    assert not verify([deny, grant], ALICE, HELLO, "team")


@pytest.mark.parametrize(
    ("resource", "applies"),
    [
        ("*:*:*", True),
        ("service:*:*", True),
        ("service:greeter:*", True),
        ("service:greeter:Greeter.Hello", True),
        ("*:greeter:Greeter.Hello", True),
        ("SERVICE:GREETER:greeter.hello", True),
        ("service:other:*", False),
        ("service:greeter:Greeter.Bye", False),
        ("api:*:*", False),
        ("service:greeter:Greeter.*", False),
    ],
)
def test_which_resources_a_rule_covers(resource: str, applies: bool) -> None:
    assert verify([rule("r", "*", resource=resource)], ALICE, HELLO, "team") is applies


@pytest.mark.parametrize(
    ("rule_endpoint", "endpoint", "matches"),
    [
        ("/foo/*", "/foo/bar", True),
        ("/foo/*", "/foo/bar/baz", True),
        ("/foo/bar/*", "/foo/bar/baz", True),
        ("/FOO/*", "/foo/Bar", True),
        ("/foo/bar", "/foo/bar", True),
        ("/foo/bar/*", "/foo/bar", True),
        ("/foo/*", "/food/bar", False),
        ("/foo/baz/*", "/foo/bar/baz", False),
        ("/*", "Greeter.Hello", False),
        ("*", "/anything/at/all", True),
    ],
)
def test_path_wildcards(rule_endpoint: str, endpoint: str, matches: bool) -> None:
    assert endpoint_matches(rule_endpoint, endpoint) is matches
    api = Resource("api", "gateway", endpoint)
    granted = verify([rule("r", "", resource=f"api:gateway:{rule_endpoint}")], None, api, "team")
    assert granted is matches


def test_a_path_wildcard_can_deny_a_subtree() -> None:
    rules = [
        rule("public", ""),
        rule("private", "", "denied", priority=5, resource="api:*:/admin/*"),
    ]
    assert verify(rules, None, Resource("api", "gw", "/users/1"), "team")
    assert not verify(rules, None, Resource("api", "gw", "/admin/users"), "team")
    assert not verify(rules, ADMIN, Resource("api", "gw", "/Admin/x"), "team")
