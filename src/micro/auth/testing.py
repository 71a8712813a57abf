"""The auth conformance suite: every implementation must pass it, the RPC client included.

Subclass :class:`AuthSuite` and provide an ``auth`` fixture that may act as a platform
admin (an :class:`~micro.auth.store.StoreAuth`, or an
:class:`~micro.auth.client.RPCAuth` whose client carries an admin's token). Each test
works in namespaces of its own. :func:`serving_auth` hosts the ``auth`` service on a
real socket behind a door, as the server does.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from micro import errors
from micro.auth._suite_rules import RulesSuite, new_namespace
from micro.auth.base import Auth, Rule, audience
from micro.auth.door import Door
from micro.auth.handler import handlers
from micro.auth.keys import KeyPair
from micro.auth.store import WRONG_LOGIN
from micro.rpc import Server, endpoints_of

__all__ = ["AuthSuite", "new_namespace", "serving_auth"]

THROTTLED = re.compile(r"too many failed login attempts; try again in \d+s")


@asynccontextmanager
async def serving_auth(backend: Auth, keys: KeyPair) -> AsyncIterator[Server]:
    """A :class:`~micro.rpc.Server` on 127.0.0.1 (port 0) hosting ``auth`` over
    ``backend``, whose door verifies bearer tokens with ``keys``."""

    async def rules(namespace: str) -> list[Rule]:
        return await backend.rules(namespace=namespace)

    async def revoked(namespace: str) -> dict[str, str]:
        return await backend.revoked(namespace=namespace)

    server = Server()
    server.door = Door(keys.verify_token, rules, revocations=revoked)
    server.add("auth", [ep for handler in handlers(backend) for ep in endpoints_of(handler)])
    await server.start("127.0.0.1:0")
    try:
        yield server
    finally:
        await server.stop(grace=1)


class AuthSuite(RulesSuite):
    """Behaviour every :class:`~micro.auth.base.Auth` must show."""

    async def test_generate_shows_the_secret_once(self, auth: Auth) -> None:
        ns = new_namespace()
        account = await auth.generate("jane", secret="s3cret!", scopes=["admin"], namespace=ns)
        assert (account.id, account.name, account.type, account.issuer) == (
            "jane",
            "jane",
            "user",
            ns,
        )
        assert account.scopes == ["admin"]
        assert account.secret == "s3cret!"
        assert account.metadata["created"].isdigit()
        [listed] = await auth.accounts(namespace=ns)
        assert listed.secret == ""
        assert (listed.id, listed.scopes, listed.issuer) == ("jane", ["admin"], ns)

    async def test_generate_makes_a_secret_when_none_is_given(self, auth: Auth) -> None:
        ns = new_namespace()
        account = await auth.generate(
            "svc", type="service", metadata={"k": "v"}, name="the-svc", namespace=ns
        )
        assert len(account.secret) >= 32
        assert (account.type, account.name, account.metadata["k"]) == ("service", "the-svc", "v")
        token = await auth.token(id="svc", secret=account.secret, namespace=ns)
        assert (await auth.inspect(token.access_token)).type == "service"

    async def test_ids_and_names_are_unique_in_a_namespace(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u1", secret="x", name="ann", namespace=ns)
        for id, name in (("u1", ""), ("u2", "ann"), ("u2", "u1"), ("ann", "")):
            with pytest.raises(errors.Conflict):
                await auth.generate(id, secret="x", name=name, namespace=ns)
        await auth.generate("u1", secret="x", name="ann", namespace=new_namespace())
        assert [a.id for a in await auth.accounts(namespace=ns)] == ["u1"]

    async def test_bad_accounts_are_refused(self, auth: Auth) -> None:
        ns = new_namespace()
        with pytest.raises(errors.BadRequest) as caught:
            await auth.generate("", secret="x", namespace=ns)
        assert caught.value.detail == "ID missing"
        for id, name, namespace in (("a/b", "", ns), ("a", "x/y", ns), ("a", "", "no/ns")):
            with pytest.raises(errors.BadRequest):
                await auth.generate(id, secret="x", name=name, namespace=namespace)
        assert await auth.accounts(namespace=ns) == []

    async def test_accounts_are_sorted_and_namespaced(self, auth: Auth) -> None:
        ns, other = new_namespace(), new_namespace()
        for id in ("bob", "amy", "cat"):
            await auth.generate(id, secret="x", namespace=ns)
        await auth.generate("dan", secret="x", namespace=other)
        assert [a.id for a in await auth.accounts(namespace=ns)] == ["amy", "bob", "cat"]
        assert [a.id for a in await auth.accounts(namespace=other)] == ["dan"]
        assert await auth.accounts(namespace=new_namespace()) == []

    async def test_login_by_id_or_name(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u-17", secret="pw", name="jane", scopes=["dev"], namespace=ns)
        for who in ("u-17", "jane"):
            token = await auth.token(id=who, secret="pw", namespace=ns)
            account = await auth.inspect(token.access_token)
            assert (account.id, account.name, account.issuer) == ("u-17", "jane", ns)
            assert (account.type, account.scopes, account.secret) == ("user", ["dev"], "")
            assert token.refresh_token
            assert token.expiry - token.created == 15 * 60

    async def test_token_expiry(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", namespace=ns)
        token = await auth.token(id="u", secret="pw", expiry=60, namespace=ns)
        assert token.expiry - token.created == 60
        # Asking for longer gets the longest the server allows (15 minutes by default).
        month = 30 * 24 * 3600
        token = await auth.token(id="u", secret="pw", expiry=month, namespace=ns)
        assert token.expiry - token.created == 15 * 60
        with pytest.raises(errors.BadRequest):
            await auth.token(id="u", secret="pw", expiry=-1, namespace=ns)

    async def test_wrong_credentials_do_not_say_which_was_wrong(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", namespace=ns)
        with pytest.raises(errors.Unauthorized) as nobody:
            await auth.token(id="nobody", secret="pw", namespace=ns)
        with pytest.raises(errors.Unauthorized) as wrong:
            await auth.token(id="u", secret="wrong", namespace=ns)
        assert nobody.value.detail == wrong.value.detail == WRONG_LOGIN
        with pytest.raises(errors.Unauthorized):
            await auth.token(id="u", secret="pw", namespace=new_namespace())
        with pytest.raises(errors.BadRequest) as bad:
            await auth.token(namespace=ns)
        assert bad.value.detail == "Credentials or a refresh token required"

    async def test_refresh_gives_a_new_access_token(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", namespace=ns)
        first = await auth.token(id="u", secret="pw", namespace=ns)
        again = await auth.token(refresh_token=first.refresh_token, expiry=120, namespace=ns)
        assert again.refresh_token == first.refresh_token
        assert again.expiry - again.created == 120
        assert (await auth.inspect(again.access_token)).id == "u"
        with pytest.raises(errors.Unauthorized):
            await auth.token(refresh_token=first.refresh_token, namespace=new_namespace())
        with pytest.raises(errors.Unauthorized):
            await auth.token(refresh_token="made-up", namespace=ns)

    async def test_a_revoked_refresh_token_is_dead(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", namespace=ns)
        laptop = await auth.token(id="u", secret="pw", namespace=ns)
        phone = await auth.token(id="u", secret="pw", namespace=ns)
        await auth.revoke(laptop.refresh_token, namespace=ns)
        with pytest.raises(errors.Unauthorized):
            await auth.token(refresh_token=laptop.refresh_token, namespace=ns)
        await auth.revoke(laptop.refresh_token, namespace=ns)
        await auth.revoke("never-issued", namespace=ns)
        assert (await auth.token(refresh_token=phone.refresh_token, namespace=ns)).access_token

    async def test_delete_account(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", name="ann", namespace=ns)
        await auth.generate("v", secret="pw", namespace=ns)
        token = await auth.token(id="u", secret="pw", namespace=ns)
        await auth.delete_account("u", namespace=ns)
        assert [a.id for a in await auth.accounts(namespace=ns)] == ["v"]
        with pytest.raises(errors.Unauthorized):
            await auth.token(refresh_token=token.refresh_token, namespace=ns)
        with pytest.raises(errors.Unauthorized) as caught:
            await auth.token(id="ann", secret="pw", namespace=ns)
        assert caught.value.detail == WRONG_LOGIN
        with pytest.raises(errors.Unauthorized, match="revoked"):  # its tokens died with it
            await auth.inspect(token.access_token)
        with pytest.raises(errors.NotFound):
            await auth.delete_account("u", namespace=ns)
        await auth.generate("w", secret="pw", name="ann", namespace=ns)

    async def test_change_secret(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="old", namespace=ns)
        session = await auth.token(id="u", secret="old", namespace=ns)
        with pytest.raises(errors.Unauthorized) as caught:
            await auth.change_secret("u", new_secret="new", old_secret="wrong", namespace=ns)
        assert caught.value.detail == "Secret not correct"
        await auth.change_secret("u", new_secret="new", old_secret="old", namespace=ns)
        with pytest.raises(errors.Unauthorized):
            await auth.token(id="u", secret="old", namespace=ns)
        with pytest.raises(errors.Unauthorized):  # a changed secret ends every session
            await auth.token(refresh_token=session.refresh_token, namespace=ns)
        with pytest.raises(errors.Unauthorized, match="revoked"):  # and every access token
            await auth.inspect(session.access_token)
        assert (await auth.revoked(namespace=ns)).keys() == {"u"}
        await auth.change_secret("u", new_secret="newer", namespace=ns)  # as an admin
        assert await auth.token(id="u", secret="newer", namespace=ns)
        with pytest.raises(errors.BadRequest):
            await auth.change_secret("u", new_secret="", namespace=ns)
        with pytest.raises(errors.NotFound):
            await auth.change_secret("nobody", new_secret="x", namespace=ns)

    async def test_wrong_secrets_are_throttled(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", namespace=ns)
        await auth.generate("v", secret="pw", namespace=ns)
        for _ in range(5):
            with pytest.raises(errors.Unauthorized):
                await auth.token(id="u", secret="guess", namespace=ns)
        with pytest.raises(errors.MicroError) as caught:
            await auth.token(id="u", secret="pw", namespace=ns)  # even the right one
        assert caught.value.code == 429
        assert THROTTLED.fullmatch(caught.value.detail), caught.value.detail
        assert await auth.token(id="v", secret="pw", namespace=ns)

    async def test_revocations_follow_the_account(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", namespace=ns)
        assert await auth.revoked(namespace=ns) == {}
        first = await auth.token(id="u", secret="pw", namespace=ns)
        await auth.delete_account("u", namespace=ns)
        assert await auth.revoked(namespace=ns) == {"u": "-"}
        # Made again, the account's new tokens count and its old ones still do not.
        await auth.generate("u", secret="pw", namespace=ns)
        second = await auth.token(id="u", secret="pw", namespace=ns)
        assert (await auth.inspect(second.access_token)).id == "u"
        with pytest.raises(errors.Unauthorized, match="revoked"):
            await auth.inspect(first.access_token)

    async def test_exchange_binds_a_token_to_one_service(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", scopes=["admin"], namespace=ns)
        token = await auth.token(id="u", secret="pw", namespace=ns)
        bound = await auth.exchange(token.access_token, service="greeter", namespace=ns)
        assert bound.refresh_token == ""
        assert 0 < bound.expiry - bound.created <= min(300, token.expiry - token.created)
        keys = KeyPair.from_public_pem(await auth.public_key())
        verified = keys.verified(bound.access_token, audience=audience(ns, "greeter"))
        assert (verified.account.id, verified.account.scopes) == ("u", ["admin"])
        for door in ("", audience(ns, "other"), audience("other", "greeter")):
            with pytest.raises(errors.Unauthorized):  # no other door takes it
                keys.verified(bound.access_token, audience=door)
        with pytest.raises(errors.Unauthorized):  # nor does exchange (it is not a platform's)
            await auth.exchange(bound.access_token, service="greeter", namespace=ns)
        with pytest.raises(errors.Unauthorized):
            await auth.exchange("junk", service="greeter", namespace=ns)

    async def test_inspect_refuses_what_is_not_a_token(self, auth: Auth) -> None:
        for junk in ("", "nope", "a.b.c", "e30.e30.e30"):
            with pytest.raises(errors.Unauthorized):
                await auth.inspect(junk)

    async def test_the_public_key_verifies_tokens(self, auth: Auth) -> None:
        ns = new_namespace()
        await auth.generate("u", secret="pw", namespace=ns)
        token = await auth.token(id="u", secret="pw", namespace=ns)
        door_keys = KeyPair.from_public_pem(await auth.public_key())
        assert not door_keys.can_sign
        account = door_keys.inspect(token.access_token)
        assert (account.id, account.issuer) == ("u", ns)
