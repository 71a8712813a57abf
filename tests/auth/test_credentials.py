"""The CLI's logins (``MICRO_HOME/tokens``), their refresh, and the client middleware.

The refresh is tested against ``FakeAuth``, an in-memory implementation of the
:class:`micro.auth.base.Auth` interface written here (a test double of the interface).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from micro import errors
from micro.auth.base import Account, Auth, Rule, Token
from micro.auth.credentials import (
    ACCESS_TOKEN_LIFE,
    Credentials,
    TokenFile,
    client_middleware,
    developer_credentials,
    developer_middleware,
    normalise_proxy,
    token_claims,
)
from micro.envs import UserConfig
from micro.rpc.types import ClientCall
from micro.settings import load

PROXY = "127.0.0.1:8081"


def token(name: str, left: float, refresh: str = "") -> Token:
    now = int(time.time())
    return Token(f"access-{name}", refresh or f"refresh-{name}", now, int(now + left))


class FakeAuth(Auth):
    """Refresh tokens it knows buy new access tokens; everything else is refused."""

    name = "fake"

    def __init__(self, refresh: dict[str, str] | None = None) -> None:
        self.refresh = dict(refresh or {})  # refresh token -> account id
        self.calls: list[dict[str, Any]] = []
        self.fail: errors.MicroError | None = None
        self.delay = 0.0

    async def token(
        self,
        *,
        id: str = "",
        secret: str = "",
        refresh_token: str = "",
        expiry: float = 0,
        namespace: str = "micro",
        client: str = "",
    ) -> Token:
        self.calls.append({"refresh_token": refresh_token, "expiry": expiry, "ns": namespace})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        owner = self.refresh.get(refresh_token)
        if owner is None:
            raise errors.Unauthorized("auth.Auth.Token", "invalid refresh token")
        now = int(time.time())
        return Token(f"access-{owner}-{len(self.calls)}", refresh_token, now, now + int(expiry))

    async def generate(
        self,
        id: str,
        *,
        secret: str = "",
        name: str = "",
        type: str = "user",
        scopes: builtins.list[str] | None = None,
        metadata: dict[str, str] | None = None,
        namespace: str = "micro",
    ) -> Account:
        raise NotImplementedError

    async def inspect(self, token: str) -> Account:
        raise NotImplementedError

    async def revoke(self, refresh_token: str, *, namespace: str = "micro") -> None:
        self.refresh.pop(refresh_token, None)

    async def accounts(self, *, namespace: str = "micro") -> builtins.list[Account]:
        return []

    async def delete_account(self, id: str, *, namespace: str = "micro") -> None:
        raise NotImplementedError

    async def change_secret(
        self,
        id: str,
        *,
        new_secret: str,
        old_secret: str = "",
        namespace: str = "micro",
        client: str = "",
    ) -> None:
        raise NotImplementedError

    async def exchange(self, token: str, *, service: str, namespace: str) -> Token:
        raise NotImplementedError

    async def revoked(self, *, namespace: str = "micro") -> dict[str, str]:
        return {}

    async def grant(self, rule: Rule, *, namespace: str = "micro") -> None:
        raise NotImplementedError

    async def revoke_rule(self, id: str, *, namespace: str = "micro") -> None:
        raise NotImplementedError

    async def rules(self, *, namespace: str = "micro") -> builtins.list[Rule]:
        return []

    async def public_key(self) -> str:
        return ""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def creds(home: Path, env: str = "local", proxy: str = PROXY, ns: str = "micro") -> Credentials:
    return Credentials(home, env, proxy, ns)


# -- the file ------------------------------------------------------------------------------


def test_file_is_created_0600_whatever_the_umask(home: Path) -> None:
    old = os.umask(0)
    try:
        TokenFile(home).put(PROXY, "micro", "admin", token("a", 600))
    finally:
        os.umask(old)
    path = home / "tokens"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)  # a stale file made by hand is tightened on the next write
    TokenFile(home).put(PROXY, "micro", "admin", token("b", 600))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("tokens")) == ["tokens"]


def test_round_trip_and_line_format(home: Path) -> None:
    file = TokenFile(home)
    saved = token("a", 600)
    file.put(PROXY, "micro", "admin", saved)
    assert file.get(PROXY, "micro", "admin") == saved
    line = (home / "tokens").read_text()
    assert line.startswith(f"micro://{PROXY}/micro/admin:")
    assert line.count("\n") == 1
    assert "access-a" not in line  # base64 of the JSON, as Micro


def test_many_proxies_namespaces_and_accounts(home: Path) -> None:
    file = TokenFile(home)
    keys = [
        (PROXY, "micro", "admin"),
        (PROXY, "foo", "jane"),
        (PROXY, "foo", "bob"),
        ("tls://proxy.example.com:443", "micro", "admin"),
        ("unix:/tmp/x.sock", "a/b", "odd%id:x@y"),
    ]
    saved = [token(str(i), 600) for i in range(len(keys))]  # (made once: a second may turn)
    for key, one in zip(keys, saved, strict=True):
        file.put(*key, one)
    for key, one in zip(keys, saved, strict=True):
        assert file.get(*key) == one
    assert [login.key for login in file.logins()] == keys
    file.put(PROXY, "micro", "admin", token("again", 600))  # moves to the end
    assert file.logins()[-1].key == (PROXY, "micro", "admin")
    assert file.remove(PROXY, "foo", "jane")
    assert not file.remove(PROXY, "foo", "jane")
    assert file.get(PROXY, "foo", "jane") is None
    assert file.get(PROXY, "foo", "bob") is not None


def test_bad_lines_are_skipped(home: Path) -> None:
    not_a_token = base64.b64encode(b'{"x": 1}').decode()
    (home / "tokens").write_text(
        "garbage\nmicro://x/y:%%%\nmicro://a/b/c:bm90IGpzb24=\n\n"
        f"micro://{PROXY}/micro/admin:{not_a_token}\n"
    )
    file = TokenFile(home)
    assert file.logins() == []
    file.put(PROXY, "micro", "admin", token("a", 600))
    assert len((home / "tokens").read_text().splitlines()) == 1


def test_remove_only_if_unchanged(home: Path) -> None:
    file = TokenFile(home)
    old = token("a", 600, refresh="r1")
    file.put(PROXY, "micro", "admin", token("a", 600, refresh="r2"))  # a new login meanwhile
    assert not file.remove(PROXY, "micro", "admin", only_if=old)
    assert file.get(PROXY, "micro", "admin") is not None


# -- which login -----------------------------------------------------------------------------


def test_save_sets_current_user_per_environment(home: Path) -> None:
    creds(home).save("admin", token("a", 600))
    creds(home, env="prod", proxy="10.0.0.5:8081").save("ops", token("o", 600))
    config = UserConfig(home)
    assert config.get("local.current-user") == "admin"
    assert config.get("prod.current-user") == "ops"
    assert creds(home).account_id() == "admin"
    assert creds(home, env="prod", proxy="10.0.0.5:8081").account_id() == "ops"
    assert creds(home, ns="foo").account_id() is None
    assert creds(home, proxy="127.0.0.1:9999").account_id() is None


def test_switching_namespaces_finds_the_login_left_there(home: Path) -> None:
    creds(home).save("admin", token("a", 600))
    creds(home, ns="foo").save("jane", token("j", 600))
    assert UserConfig(home).get("local.current-user") == "jane"
    assert creds(home, ns="foo").account_id() == "jane"
    assert creds(home).account_id() == "admin"  # current-user is jane; admin is who is here
    creds(home).save("bob", token("b", 600))
    assert creds(home).account_id() == "bob"
    assert creds(home).forget() is not None  # logout: bob goes, admin is still logged in
    assert creds(home).account_id() == "admin"


def test_fallback_to_the_current_namespace(home: Path) -> None:
    creds(home).save("admin", token("a", 600))
    aimed = Credentials(home, "local", PROXY, "bar", fallback="micro")
    assert aimed.account_id() == "admin"  # no login in bar: micro's
    assert aimed.current(exact=True) is None
    assert aimed.forget() is None  # logout of bar leaves micro's login alone
    assert creds(home).account_id() == "admin"
    aimed.save("kim", token("k", 600))
    assert aimed.account_id() == "kim"
    assert creds(home).account_id() == "admin"
    assert Credentials(home, "local", PROXY, "micro", fallback="micro").fallback is None


async def test_fallback_login_refreshes_in_its_own_namespace(home: Path) -> None:
    creds(home).save("admin", token("a", 10))
    auth = FakeAuth({"refresh-a": "admin"})
    aimed = Credentials(home, "local", PROXY, "bar", fallback="micro")
    assert await aimed.access_token(auth) == "access-admin-1"
    assert auth.calls[0]["ns"] == "micro"
    saved = TokenFile(home).get(PROXY, "micro", "admin")
    assert saved is not None
    assert saved.access_token == "access-admin-1"
    assert TokenFile(home).get(PROXY, "bar", "admin") is None


# -- refresh ---------------------------------------------------------------------------------


async def test_not_logged_in(home: Path) -> None:
    auth = FakeAuth()
    assert await creds(home).access_token(auth) is None
    assert auth.calls == []


async def test_fresh_token_is_used_as_is(home: Path) -> None:
    creds(home).save("admin", token("a", 600))
    auth = FakeAuth()
    assert await creds(home).access_token(auth) == "access-a"
    assert auth.calls == []


async def test_refresh_when_less_than_a_minute_left(home: Path) -> None:
    creds(home, ns="foo").save("jane", token("j", 30))
    auth = FakeAuth({"refresh-j": "jane"})
    c = creds(home, ns="foo")
    first = await c.access_token(auth)
    assert first == "access-jane-1"
    assert auth.calls == [{"refresh_token": "refresh-j", "expiry": ACCESS_TOKEN_LIFE, "ns": "foo"}]
    saved = TokenFile(home).get(PROXY, "foo", "jane")
    assert saved is not None
    assert saved.access_token == first
    assert saved.refresh_token == "refresh-j"
    assert saved.expiry >= time.time() + ACCESS_TOKEN_LIFE - 5
    # Saved: another process (a new Credentials) uses it without refreshing.
    assert await creds(home, ns="foo").access_token(auth) == first
    assert len(auth.calls) == 1


async def test_expired_token_is_refreshed(home: Path) -> None:
    creds(home).save("admin", token("a", -3600))
    auth = FakeAuth({"refresh-a": "admin"})
    assert await creds(home).access_token(auth) == "access-admin-1"


async def test_rejected_refresh_token_forgets_the_login(home: Path) -> None:
    creds(home).save("admin", token("a", 10))
    auth = FakeAuth()  # knows no refresh token: revoked, or the account was deleted
    assert await creds(home).access_token(auth) is None
    assert TokenFile(home).logins() == []
    assert creds(home).account_id() is None


async def test_other_failures_keep_the_login(home: Path) -> None:
    creds(home).save("admin", token("a", 30))
    auth = FakeAuth({"refresh-a": "admin"})
    auth.fail = errors.ServiceUnavailable("micro.proxy", "no route")
    # Still valid for 30 s: used as it is.
    assert await creds(home).access_token(auth) == "access-a"
    creds(home).save("admin", token("a", -5))
    with pytest.raises(errors.ServiceUnavailable):
        await creds(home).access_token(auth)
    assert creds(home).account_id() == "admin"
    # Throttled is not rejected either.
    auth.fail = errors.new("auth.Auth.Token", "too many attempts", 429)
    with pytest.raises(errors.MicroError):
        await creds(home).access_token(auth)
    assert creds(home).account_id() == "admin"


async def test_concurrent_calls_refresh_once(home: Path) -> None:
    creds(home).save("admin", token("a", 5))
    auth = FakeAuth({"refresh-a": "admin"})
    auth.delay = 0.05
    c = creds(home)
    got = await asyncio.gather(*(c.access_token(auth) for _ in range(10)))
    assert set(got) == {"access-admin-1"}
    assert len(auth.calls) == 1


async def test_a_login_made_later_is_seen(home: Path) -> None:
    c = creds(home)
    c.recheck = 0.0
    auth = FakeAuth()
    assert await c.access_token(auth) is None
    creds(home).save("admin", token("a", 600))  # micro login, in another process
    assert await c.access_token(auth) == "access-a"


# -- middleware ----------------------------------------------------------------------------


def call(service: str = "store", endpoint: str = "Store.Read", **md: str) -> ClientCall:
    return ClientCall(service, endpoint, dict(md), "application/msgpack", b"", 5.0)


async def sent(mw: Any, c: ClientCall) -> dict[str, str]:
    async def nxt(c: ClientCall) -> bytes:
        return b""

    await mw(c, nxt)
    return c.metadata


async def test_middleware_adds_the_bearer_token(home: Path) -> None:
    made: list[FakeAuth] = []

    def factory() -> Auth:
        made.append(FakeAuth({"refresh-a": "admin"}))
        return made[-1]

    mw = client_middleware(creds(home), factory)
    assert "authorization" not in await sent(mw, call())  # not logged in
    assert made == []  # nothing to refresh: no Auth made
    creds(home).save("admin", token("a", 600))
    c = creds(home)
    mw = client_middleware(c, factory)
    assert (await sent(mw, call()))["authorization"] == "Bearer access-a"
    # Never on Auth.Token (a refresh must not recurse), never over an explicit one.
    assert "authorization" not in await sent(mw, call("auth", "Auth.Token"))
    assert (await sent(mw, call(authorization="Bearer other")))["authorization"] == ("Bearer other")
    # Other auth endpoints are authenticated.
    assert (await sent(mw, call("auth", "Accounts.List")))["authorization"] == "Bearer access-a"
    # Refresh goes through the factory's Auth, made once.
    creds(home).save("admin", token("a", 10))
    mw = client_middleware(creds(home), factory)
    assert (await sent(mw, call()))["authorization"] == "Bearer access-admin-1"
    assert (await sent(mw, call()))["authorization"] == "Bearer access-admin-1"
    assert len(made) == 1


def test_developer_credentials(home: Path) -> None:
    env = {"MICRO_HOME": str(home)}
    found = developer_credentials(load(env))
    assert found is not None
    assert (found.env, found.proxy, found.namespace) == ("local", PROXY, "micro")
    UserConfig(home).set("namespaces.local.current", "foo")
    found = developer_credentials(load({**env, "MICRO_PROXY": "example.com"}))
    assert found is not None
    assert (found.proxy, found.namespace) == ("tls://example.com:443", "foo")
    found = developer_credentials(load({**env, "MICRO_NAMESPACE": "bar"}))
    assert found is not None
    assert (found.namespace, found.fallback) == ("bar", "foo")
    assert developer_credentials(load({**env, "MICRO_ENV": "nope"})) is None
    with_own = load({**env, "MICRO_AUTH_ID": "svc", "MICRO_AUTH_SECRET": "s"})
    assert developer_credentials(with_own) is None
    assert developer_middleware(with_own, FakeAuth) is None


async def test_developer_middleware_uses_the_cli_login(home: Path) -> None:
    settings = load({"MICRO_HOME": str(home)})
    creds(home).save("admin", token("a", 600))  # micro login
    mw = developer_middleware(settings, FakeAuth)
    assert mw is not None
    assert (await sent(mw, call()))["authorization"] == "Bearer access-a"


def test_helpers() -> None:
    assert normalise_proxy("127.0.0.1:8081") == "127.0.0.1:8081"
    assert normalise_proxy("proxy.m3o.com") == "tls://proxy.m3o.com:443"
    with pytest.raises(ValueError, match="port"):
        normalise_proxy("host:notaport")
    payload = base64.urlsafe_b64encode(b'{"sub":"jane","name":"Jane"}').rstrip(b"=").decode()
    assert token_claims(f"x.{payload}.y") == {"sub": "jane", "name": "Jane"}
    assert token_claims("not a jwt") == {}
    assert token_claims("a.!!!.c") == {}
