"""The rules half of the auth conformance suite (see :mod:`micro.auth.testing`)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from micro import errors
from micro.auth.base import DEFAULT_RULE, Auth, Resource, Rule, RulesWatcher

__all__ = ["RulesSuite", "new_namespace"]


def new_namespace() -> str:
    """A namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:16]}"


async def _next(watcher: RulesWatcher, timeout: float = 10.0) -> str:
    async with asyncio.timeout(timeout):
        return await watcher.next()


def _rule(id: str, **kwargs: object) -> Rule:
    resource = kwargs.pop("resource", Resource("service", "greeter", "Greeter.Hello"))
    assert isinstance(resource, Resource)
    return Rule(id=id, resource=resource, **kwargs)  # type: ignore[arg-type]


class RulesSuite:
    """Rules: the virtual default, create, delete, list, watch."""

    async def test_a_new_namespace_has_the_public_default(self, auth: Auth) -> None:
        assert await auth.rules(namespace=new_namespace()) == [DEFAULT_RULE]

    async def test_grant_then_list(self, auth: Auth) -> None:
        ns = new_namespace()
        rule = _rule("deny-hello", scope="*", access="denied", priority=5)
        await auth.grant(rule, namespace=ns)
        await auth.grant(_rule("admins", scope="admin", priority=-1), namespace=ns)
        rules = await auth.rules(namespace=ns)
        assert [r.id for r in rules] == ["admins", "default", "deny-hello"]
        assert rules[2] == rule
        assert rules[1] == DEFAULT_RULE
        assert await auth.rules(namespace=new_namespace()) == [DEFAULT_RULE]

    async def test_a_rule_id_is_taken_once(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.grant(_rule("one"), namespace=ns)
        with pytest.raises(errors.Conflict) as caught:
            await auth.grant(_rule("one", scope="*"), namespace=ns)
        assert caught.value.detail == "A rule with this ID already exists"
        with pytest.raises(errors.Conflict):
            await auth.grant(_rule("default"), namespace=new_namespace())

    async def test_bad_rules_are_refused_with_micros_words(self, auth: Auth) -> None:
        ns = new_namespace()
        with pytest.raises(errors.BadRequest) as caught:
            await auth.grant(_rule(""), namespace=ns)
        assert caught.value.detail == "ID missing"
        with pytest.raises(errors.BadRequest) as caught:
            await auth.grant(_rule("r", resource=Resource("service", "", "*")), namespace=ns)
        assert caught.value.detail == "Resource missing"
        with pytest.raises(errors.BadRequest):
            await auth.grant(_rule("a/b"), namespace=ns)
        with pytest.raises(errors.BadRequest):
            await auth.grant(_rule("r"), namespace="bad/namespace")
        assert await auth.rules(namespace=ns) == [DEFAULT_RULE]

    async def test_revoke_rule(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.grant(_rule("r"), namespace=ns)
        await auth.revoke_rule("r", namespace=ns)
        assert await auth.rules(namespace=ns) == [DEFAULT_RULE]
        with pytest.raises(errors.NotFound):
            await auth.revoke_rule("r", namespace=ns)
        with pytest.raises(errors.BadRequest) as caught:
            await auth.revoke_rule("", namespace=ns)
        assert caught.value.detail == "ID missing"

    async def test_a_deleted_default_stays_deleted(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.revoke_rule("default", namespace=ns)
        assert await auth.rules(namespace=ns) == []
        assert await auth.rules(namespace=ns) == []
        only = _rule("only", scope="*")
        await auth.grant(only, namespace=ns)
        assert await auth.rules(namespace=ns) == [only]
        await auth.revoke_rule("only", namespace=ns)
        assert await auth.rules(namespace=ns) == []
        with pytest.raises(errors.NotFound):
            await auth.revoke_rule("missing", namespace=new_namespace())

    async def test_watch_hears_its_namespace_only(self, auth: Auth) -> None:
        ns, other = new_namespace(), new_namespace()
        async with auth.watch_rules(ns) as watcher:
            assert await _next(watcher) == ns  # in place: reload now
            await auth.grant(_rule("elsewhere"), namespace=other)
            await auth.grant(_rule("here"), namespace=ns)
            assert await _next(watcher) == ns
            await auth.revoke_rule("here", namespace=ns)
            assert await _next(watcher) == ns

    async def test_watch_every_namespace(self, auth: Auth) -> None:
        ns = new_namespace()
        async with auth.watch_rules(None) as watcher:
            assert await _next(watcher) == "*"
            await auth.grant(_rule("r"), namespace=ns)
            assert await _next(watcher) == ns

    async def test_a_stopped_watcher_ends(self, auth: Auth) -> None:
        watcher = auth.watch_rules(new_namespace())
        async with watcher:
            await _next(watcher)
        with pytest.raises(StopAsyncIteration):
            await watcher.next()
