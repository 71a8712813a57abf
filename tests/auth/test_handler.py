"""The ``auth`` service as callers meet it: over a real socket, behind a door that verifies
bearer tokens, with Micro's table of who may do what, and Micro's JSON shapes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from micro import errors
from micro.auth.base import Resource, Rule
from micro.auth.client import RPCAuth
from micro.auth.keys import KeyPair
from micro.auth.store import StoreAuth
from micro.auth.testing import serving_auth
from micro.codec import JSON
from micro.rpc import Client, Server

RULE = Rule(id="r", resource=Resource("service", "greeter", "*"), scope="*")


@dataclass
class World:
    server: Server
    backend: StoreAuth
    clients: list[Client]

    async def login(self, id: str, secret: str, namespace: str) -> str:
        token = await self.backend.token(id=id, secret=secret, namespace=namespace)
        return token.access_token

    def client(self, token: str = "", **metadata: str) -> Client:
        if token:
            metadata["authorization"] = f"Bearer {token}"
        client = Client(proxy=str(self.server.address), metadata=metadata)
        self.clients.append(client)
        return client

    def auth(self, token: str = "", **metadata: str) -> RPCAuth:
        return RPCAuth(self.client(token, **metadata))

    async def as_(self, id: str, namespace: str) -> RPCAuth:
        return self.auth(await self.login(id, "pw", namespace))


@pytest.fixture
async def world(store_auth: StoreAuth, keys: KeyPair) -> AsyncIterator[World]:
    await store_auth.bootstrap("pw")
    await store_auth.generate("boss", secret="pw", scopes=["admin"], namespace="team")
    await store_auth.generate("dev", secret="pw", namespace="team")
    await store_auth.generate("dev2", secret="pw", namespace="team")
    await store_auth.generate(
        "svc", secret="pw", type="service", scopes=["service"], namespace="team"
    )
    await store_auth.generate("eve", secret="pw", scopes=["admin"], namespace="other")
    async with serving_auth(store_auth, keys) as server:
        world = World(server, store_auth, [])
        yield world
        for client in world.clients:
            await client.close()


async def refused(call: Awaitable[Any], code: int, detail: str) -> None:
    with pytest.raises(errors.MicroError) as caught:
        await call
    assert (caught.value.code, caught.value.detail) == (code, detail)


def admin_calls(auth: RPCAuth, namespace: str) -> list[Callable[[], Awaitable[Any]]]:
    return [
        lambda: auth.generate("new", secret="x", namespace=namespace),
        lambda: auth.delete_account("dev2", namespace=namespace),
        lambda: auth.grant(RULE, namespace=namespace),
        lambda: auth.revoke_rule("default", namespace=namespace),
    ]


def member_calls(auth: RPCAuth, namespace: str) -> list[Callable[[], Awaitable[Any]]]:
    return [
        lambda: auth.accounts(namespace=namespace),
        lambda: auth.rules(namespace=namespace),
        lambda: auth.change_secret("dev2", new_secret="n", namespace=namespace),
        lambda: anext(aiter(auth.watch_rules(namespace))),
    ]


async def test_login_inspect_and_public_key_need_no_account(world: World) -> None:
    anon = world.auth()
    token = await anon.token(id="dev", secret="pw", namespace="team")
    assert (await anon.inspect(token.access_token)).issuer == "team"
    assert "BEGIN PUBLIC KEY" in await anon.public_key()
    await anon.revoke(token.refresh_token, namespace="team")
    await refused(
        anon.token(refresh_token=token.refresh_token, namespace="team"),
        401,
        "invalid refresh token",
    )


async def test_without_an_account_everything_else_is_401(world: World) -> None:
    anon = world.auth()
    for call in admin_calls(anon, "team") + member_calls(anon, "team"):
        await refused(call(), 401, "an account is required")


async def test_a_bad_bearer_token_stops_at_the_door(world: World, other_keys: KeyPair) -> None:
    from micro.auth.base import Account

    forged = other_keys.sign(Account(id="admin", scopes=["admin"]), expiry=60)
    with pytest.raises(errors.Unauthorized):
        await world.auth(forged).accounts(namespace="micro")


async def test_a_namespace_admin_administers_its_namespace(world: World) -> None:
    boss = await world.as_("boss", "team")
    for call in member_calls(boss, "team") + admin_calls(boss, "team"):
        await call()


async def test_a_service_account_administers_nothing(world: World) -> None:
    svc = await world.as_("svc", "team")
    for call in admin_calls(svc, "team"):
        await refused(call(), 403, "admin access required")
    await refused(
        svc.generate("root2", secret="x", scopes=["admin"], namespace="micro"),
        403,
        "access denied to namespace micro",
    )
    assert await svc.accounts(namespace="team")  # a member still reads


async def test_an_admin_of_one_namespace_is_a_stranger_in_another(world: World) -> None:
    eve = await world.as_("eve", "other")
    for call in admin_calls(eve, "team") + member_calls(eve, "team"):
        await refused(call(), 403, "access denied to namespace team")
    await refused(eve.accounts(namespace="micro"), 403, "access denied to namespace micro")


async def test_members_read_but_do_not_administer(world: World) -> None:
    dev = await world.as_("dev", "team")
    assert [a.id for a in await dev.accounts(namespace="team")] == ["boss", "dev", "dev2", "svc"]
    assert await dev.rules(namespace="team")
    for call in admin_calls(dev, "team"):
        await refused(call(), 403, "admin access required")


async def test_platform_admins_act_everywhere(world: World) -> None:
    root = await world.as_("admin", "micro")
    for namespace in ("team", "other", "brand-new"):
        await root.generate("made-by-root", secret="x", namespace=namespace)
        await root.grant(RULE, namespace=namespace)
        assert await root.accounts(namespace=namespace)
    async with root.watch_rules(None) as watcher:
        assert await watcher.next() == "*"


async def test_nobody_deletes_their_own_account(world: World) -> None:
    for id, namespace in (("boss", "team"), ("admin", "micro")):
        me = await world.as_(id, namespace)
        await refused(
            me.delete_account(id, namespace=namespace), 400, "Can't delete your own account"
        )
    root = await world.as_("admin", "micro")
    await root.delete_account("boss", namespace="team")  # someone else's: fine


async def test_change_secret_of_ones_own_needs_the_old_one(world: World) -> None:
    dev = await world.as_("dev", "team")
    await refused(
        dev.change_secret("dev", new_secret="n1", namespace="team"), 400, "Old secret missing"
    )
    await refused(
        dev.change_secret("dev", new_secret="n1", old_secret="nope", namespace="team"),
        401,
        "Secret not correct",
    )
    await dev.change_secret("dev", new_secret="n1", old_secret="pw", namespace="team")
    assert await world.backend.token(id="dev", secret="n1", namespace="team")
    await refused(
        dev.change_secret("dev2", new_secret="n", old_secret="pw", namespace="team"),
        403,
        "admin access required",
    )
    boss = await world.as_("boss", "team")
    await boss.change_secret("dev2", new_secret="set-by-boss", namespace="team")
    assert await world.backend.token(id="dev2", secret="set-by-boss", namespace="team")


async def test_a_token_of_one_namespace_does_not_open_another(world: World) -> None:
    token = await world.login("eve", "pw", "other")
    assert (await world.auth().inspect(token)).issuer == "other"
    # Asking for team by option or by header: the door lets the call through (team's
    # rules are public), the handler refuses the namespace.
    eve = world.auth(token)
    await refused(eve.accounts(namespace="team"), 403, "access denied to namespace team")
    eve_in_team = world.client(token, **{"micro-namespace": "team"})
    with pytest.raises(errors.Forbidden):
        await eve_in_team.call("auth", "Accounts.List", {})


async def test_watchers_see_their_namespace_only(world: World) -> None:
    dev = await world.as_("dev", "team")
    async with dev.watch_rules("team") as watcher:
        assert await watcher.next() == "team"
        await world.backend.grant(RULE, namespace="team")
        assert await watcher.next() == "team"
    await refused(anext(aiter(dev.watch_rules("other"))), 403, "access denied to namespace other")
    await refused(anext(aiter(dev.watch_rules(None))), 403, "access denied to namespace micro")
    boss = await world.as_("boss", "team")
    await refused(anext(aiter(boss.watch_rules(None))), 403, "access denied to namespace micro")


async def test_micros_json_shapes(world: World) -> None:
    anon = world.client(**{"micro-namespace": "team"})
    body = json.dumps(
        {"id": "boss", "secret": "pw", "token_expiry": 60, "options": {"namespace": "team"}}
    )
    raw = await anon.call_raw("auth", "Auth.Token", body.encode(), content_type=JSON)
    token = json.loads(raw)["token"]
    assert set(token) == {"access_token", "refresh_token", "created", "expiry"}
    assert token["expiry"] - token["created"] == 60
    boss = world.client(token["access_token"])  # in its issuer's namespace, team

    async def call(endpoint: str, request: dict[str, Any]) -> Any:
        data = await boss.call_raw(
            "auth", endpoint, json.dumps(request).encode(), content_type=JSON
        )
        return json.loads(data)

    rule = {
        "id": "jsonrule",
        "scope": "*",
        "resource": {"type": "service", "name": "greeter", "endpoint": "*"},
        "access": "GRANTED",
        "priority": 3,
    }
    await call("Rules.Create", {"rule": rule, "options": {"namespace": "team"}})
    listed = await call("Rules.List", {"options": {"namespace": "team"}})
    assert rule in listed["rules"]
    default = {"type": "*", "name": "*", "endpoint": "*"}
    assert {
        "id": "default",
        "scope": "",
        "resource": default,
        "access": "GRANTED",
        "priority": 0,
    } in listed["rules"]
    for broken, detail in (
        ({}, "Rule missing"),
        ({"rule": {"id": "x", "access": "GRANTED"}}, "Resource missing"),
        ({"rule": {**rule, "id": "x", "access": "UNKNOWN"}}, "Access missing"),
        ({"rule": {**rule, "id": ""}}, "ID missing"),
    ):
        await refused(call("Rules.Create", broken), 400, detail)
    created = await call(
        "Auth.Generate", {"id": "jim", "scopes": ["dev"], "options": {"namespace": "team"}}
    )
    assert created["account"]["id"] == "jim"
    assert created["account"]["issuer"] == "team"
    assert created["account"]["secret"]
    accounts = await call("Accounts.List", {"options": {"namespace": "team"}})
    assert all("secret" not in a for a in accounts["accounts"])


async def test_nothing_secret_is_logged_by_the_service(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    anon = world.auth()
    token = await anon.token(id="dev", secret="pw", namespace="team")
    again = await anon.token(refresh_token=token.refresh_token, namespace="team")
    for guess in ("guess-aaaa-1", "guess-aaaa-2"):
        with pytest.raises(errors.Unauthorized):
            await anon.token(id="dev", secret=guess, namespace="team")
    boss = await world.as_("boss", "team")
    made = await boss.generate("fresh", namespace="team")
    await boss.change_secret("fresh", new_secret="changed-secret-9", namespace="team")
    logged = caplog.text + "\n".join(str(r.args) + r.getMessage() for r in caplog.records)
    for secret in (
        token.access_token,
        token.refresh_token,
        again.access_token,
        made.secret,
        "guess-aaaa-1",
        "changed-secret-9",
    ):
        assert secret not in logged
