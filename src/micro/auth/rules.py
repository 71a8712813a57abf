"""Micro's rule verification, copied exactly (reference §6.4).

1. Candidates: rules whose resource type is ``*`` or the requested type, name ``*`` or the
   requested name, endpoint ``*``, the requested endpoint, or (for path-like endpoints) a
   prefix wildcard ``/a/*``, ``/a/b/*``...; compared case-insensitively.
2. Sorted by priority, highest first (stable).
3. For each: a public rule (scope ``""``) decides at once (denied: forbidden, granted:
   allowed). Without an account, other rules are skipped. A rule whose scope is not ``+``
   forbids an account of another namespace. Scope ``*`` or ``+``, or a scope the account
   holds, decides by its access.
4. No decision: forbidden.
Callers answer 403 when forbidden with an account and 401 without one.
"""

from __future__ import annotations

from collections.abc import Iterable

from micro.auth.base import Account, Resource, Rule

__all__ = ["endpoint_matches", "verify"]


def _wildcards(endpoint: str) -> set[str]:
    """``/a/b/c`` -> ``{/a/*, /a/b/*, /a/b/c/*}`` (lower case); none for non-paths."""
    if not endpoint.startswith("/"):
        return set()
    parts = endpoint.lower().strip("/").split("/")
    return {"/" + "/".join(parts[: i + 1]) + "/*" for i in range(len(parts))}


def endpoint_matches(rule_endpoint: str, endpoint: str) -> bool:
    """True when a rule's endpoint covers ``endpoint``."""
    wanted = rule_endpoint.lower()
    return wanted in ("*", endpoint.lower()) or wanted in _wildcards(endpoint)


def verify(
    rules: Iterable[Rule], account: Account | None, resource: Resource, namespace: str
) -> bool:
    """True when ``account`` (``None`` = anonymous) may reach ``resource`` in ``namespace``."""
    rtype, rname = resource.type.lower(), resource.name.lower()
    candidates = [
        rule
        for rule in rules
        if rule.resource.type.lower() in ("*", rtype)
        and rule.resource.name.lower() in ("*", rname)
        and endpoint_matches(rule.resource.endpoint, resource.endpoint)
    ]
    candidates.sort(key=lambda r: r.priority, reverse=True)
    for rule in candidates:
        if rule.scope == "":
            return rule.access == "granted"
        if account is None:
            continue
        if rule.scope != "+" and account.issuer != namespace:
            return False
        if rule.scope in ("*", "+") or account.has_scope(rule.scope):
            return rule.access == "granted"
    return False
