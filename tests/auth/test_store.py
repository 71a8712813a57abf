"""StoreAuth beyond the suite: the first admin, throttling over time, what is kept on the
store (hashes, never secrets), tokens of deleted accounts, and quiet logs."""

from __future__ import annotations

import asyncio
import logging

import pytest
from argon2 import PasswordHasher
from tests.auth.conftest import Clock

from micro import errors
from micro.auth.keys import KeyPair
from micro.auth.store import StoreAuth
from micro.store.memory import MemoryStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def auth(
    store: MemoryStore, keys: KeyPair, hasher: PasswordHasher, clock: Clock
) -> StoreAuth:
    auth = StoreAuth(store, keys, hasher=hasher, clock=clock)
    await auth.generate("u", secret="right", namespace="team")
    return auth


async def fail(auth: StoreAuth, times: int, id: str = "u") -> None:
    for _ in range(times):
        with pytest.raises(errors.Unauthorized):
            await auth.token(id=id, secret="wrong", namespace="team")


async def locked_for(auth: StoreAuth, secret: str = "right") -> int:
    with pytest.raises(errors.MicroError) as caught:
        await auth.token(id="u", secret=secret, namespace="team")
    assert caught.value.code == 429
    assert caught.value.id == "auth.Auth.Token"
    detail = caught.value.detail
    assert detail.startswith("too many failed login attempts; try again in ")
    return int(detail.rsplit(" ", 1)[1].rstrip("s"))


async def test_bootstrap_creates_the_first_admin_once(store_auth: StoreAuth) -> None:
    admin = await store_auth.bootstrap("micro-pw")
    assert admin is not None
    assert (admin.id, admin.type, admin.scopes, admin.issuer) == (
        "admin",
        "user",
        ["admin"],
        "micro",
    )
    assert admin.is_platform_admin
    assert await store_auth.bootstrap("other") is None
    token = await store_auth.token(id="admin", secret="micro-pw")
    assert (await store_auth.inspect(token.access_token)).is_platform_admin
    with pytest.raises(ValueError, match="empty"):
        await store_auth.bootstrap("")


async def test_bootstrap_leaves_a_namespace_with_users_alone(store_auth: StoreAuth) -> None:
    await store_auth.generate("jane", secret="x", scopes=["admin"])
    assert await store_auth.bootstrap("pw") is None
    assert [a.id for a in await store_auth.accounts()] == ["jane"]
    await store_auth.generate("admin-svc", type="service", namespace="other")
    assert await store_auth.bootstrap("pw") is None


async def test_a_lock_lifts_after_its_backoff(auth: StoreAuth, clock: Clock) -> None:
    await fail(auth, 5)
    assert await locked_for(auth) == 30
    clock.advance(20)
    assert await locked_for(auth, "wrong") == 10  # refused without counting
    clock.advance(10)
    assert await auth.token(id="u", secret="right", namespace="team")
    await fail(auth, 4)  # the success wiped the slate
    assert await auth.token(id="u", secret="right", namespace="team")


async def test_backoff_doubles_up_to_fifteen_minutes(auth: StoreAuth, clock: Clock) -> None:
    waits = []
    for _ in range(7):
        await fail(auth, 5)
        waits.append(await locked_for(auth))
        clock.advance(waits[-1])
    assert waits == [30, 60, 120, 240, 480, 900, 900]


async def test_only_failures_within_five_minutes_count(auth: StoreAuth, clock: Clock) -> None:
    await fail(auth, 4)
    clock.advance(301)
    await fail(auth, 4)
    assert await auth.token(id="u", secret="right", namespace="team")


async def test_throttling_is_per_account_and_namespace(auth: StoreAuth) -> None:
    await auth.generate("u", secret="right", namespace="other")
    await auth.generate("v", secret="right", namespace="team")
    await fail(auth, 5)
    assert await locked_for(auth) == 30
    assert await auth.token(id="u", secret="right", namespace="other")
    assert await auth.token(id="v", secret="right", namespace="team")


async def test_names_share_their_accounts_lock(auth: StoreAuth) -> None:
    await auth.generate("w", secret="right", name="wendy", namespace="team")
    await fail(auth, 3, id="w")
    await fail(auth, 2, id="wendy")
    with pytest.raises(errors.MicroError) as caught:
        await auth.token(id="w", secret="right", namespace="team")
    assert caught.value.code == 429


async def test_a_burst_of_parallel_guesses_gets_five_tries(auth: StoreAuth) -> None:
    guesses = [auth.token(id="u", secret=f"guess{i}", namespace="team") for i in range(20)]
    outcomes = await asyncio.gather(*guesses, return_exceptions=True)
    codes = sorted(o.code for o in outcomes if isinstance(o, errors.MicroError))
    assert codes == [401] * 5 + [429] * 15


async def test_old_secret_guesses_are_throttled_too(auth: StoreAuth) -> None:
    for _ in range(5):
        with pytest.raises(errors.Unauthorized):
            await auth.change_secret("u", new_secret="mine", old_secret="guess", namespace="team")
    with pytest.raises(errors.MicroError) as caught:
        await auth.change_secret("u", new_secret="mine", old_secret="right", namespace="team")
    assert caught.value.code == 429


async def test_a_deleted_accounts_tokens_die_at_once(auth: StoreAuth, clock: Clock) -> None:
    token = await auth.token(id="u", secret="right", expiry=60, namespace="team")
    await auth.delete_account("u", namespace="team")
    with pytest.raises(errors.Unauthorized):
        await auth.token(refresh_token=token.refresh_token, namespace="team")
    with pytest.raises(errors.Unauthorized) as caught:
        await auth.inspect(token.access_token)
    assert caught.value.detail == "token revoked"
    # The revocation is kept as long as a token could live, and no longer.
    [record] = await auth._book._store.read("revoked/team/u", database="micro", table="auth")
    assert 0 < record.expiry <= auth.token_ttl + 60


async def test_the_longest_token_is_the_servers_to_say(store: MemoryStore, keys: KeyPair) -> None:
    short = StoreAuth(store, keys, token_ttl=120)
    await short.generate("u", secret="pw", namespace="team")
    for asked, given in ((0, 120), (60, 60), (3600, 120)):
        token = await short.token(id="u", secret="pw", expiry=asked, namespace="team")
        assert token.expiry - token.created == given


async def test_secrets_and_refresh_tokens_are_stored_hashed(
    auth: StoreAuth, store: MemoryStore
) -> None:
    account = await auth.generate("x", namespace="team")
    token = await auth.token(id="x", secret=account.secret, namespace="team")
    await auth.change_secret("x", new_secret="second-secret", namespace="team")
    token2 = await auth.token(id="x", secret="second-secret", namespace="team")
    records = await store.read("", database="micro", table="auth", prefix=True)
    assert records
    everything = b"\n".join(r.key.encode() + b"=" + r.value for r in records)
    for secret in (account.secret, "second-secret", "right", token2.refresh_token):
        assert secret.encode() not in everything
    assert token.refresh_token.encode() not in everything
    assert b"$argon2id$" in everything
    refresh = [r for r in records if r.key.startswith("refresh/")]
    assert refresh
    assert all(r.expiry > 0 for r in refresh)  # unused refresh tokens expire


async def test_hashes_are_upgraded_when_the_parameters_change(
    store: MemoryStore, keys: KeyPair, auth: StoreAuth
) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=64, parallelism=1)
    upgraded = StoreAuth(store, keys, hasher=stronger)
    assert await upgraded.token(id="u", secret="right", namespace="team")
    [record] = await store.read("account/team/u", database="micro", table="auth")
    assert b"m=64,t=2" in record.value
    assert await upgraded.token(id="u", secret="right", namespace="team")


async def test_store_auth_needs_a_signing_key(store: MemoryStore, keys: KeyPair) -> None:
    with pytest.raises(ValueError, match="private key"):
        StoreAuth(store, KeyPair.from_public_pem(keys.public_pem))


async def test_close_ends_rule_watchers(store_auth: StoreAuth) -> None:
    watcher = store_auth.watch_rules("team")
    assert await watcher.next() == "team"
    waiting = asyncio.ensure_future(watcher.next())
    await store_auth.close()
    with pytest.raises(StopAsyncIteration):
        await waiting
    with pytest.raises(StopAsyncIteration):
        await store_auth.watch_rules("team").next()


async def test_nothing_secret_is_logged(
    auth: StoreAuth, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    account = await auth.generate("x", secret="hunter2-secret", name="xena", namespace="team")
    seen.append(account.secret)
    token = await auth.token(id="xena", secret="hunter2-secret", namespace="team")
    seen += [token.access_token, token.refresh_token]
    again = await auth.token(refresh_token=token.refresh_token, namespace="team")
    seen.append(again.access_token)
    for guess in ("guess-1-abc", "guess-2-abc", "guess-3-abc", "guess-4-abc", "guess-5-abc"):
        seen.append(guess)
        with pytest.raises(errors.Unauthorized) as caught:
            await auth.token(id="x", secret=guess, namespace="team")
        assert guess not in caught.value.detail
    with pytest.raises(errors.MicroError):
        await auth.token(id="x", secret="hunter2-secret", namespace="team")
    clock.advance(30)
    await auth.change_secret(
        "x", new_secret="new-secret-42", old_secret="hunter2-secret", namespace="team"
    )
    seen.append("new-secret-42")
    await auth.revoke(token.refresh_token, namespace="team")
    with pytest.raises(errors.Unauthorized):
        await auth.inspect(token.access_token + "x")
    await auth.delete_account("x", namespace="team")
    assert any("locked" in r.getMessage() for r in caplog.records)  # logging did happen
    logged = caplog.text + "\n".join(str(r.args) + r.getMessage() for r in caplog.records)
    for secret in seen:
        assert secret not in logged


async def test_a_refresh_token_bought_in_a_race_is_dead(auth: StoreAuth) -> None:
    # A login that checked the old secret (or the deleted account) and stores its refresh
    # token only after the change: the token is bound to what it logged into, so it dies.
    book = auth._book
    before = await book.get("u", "team")
    assert before is not None
    await auth.change_secret("u", new_secret="changed", namespace="team")
    await book.keep_refresh("late-after-change", before, 3600)
    with pytest.raises(errors.Unauthorized):
        await auth.token(refresh_token="late-after-change", namespace="team")
    current = await book.get("u", "team")
    assert current is not None
    await auth.delete_account("u", namespace="team")
    await book.keep_refresh("late-after-delete", current, 3600)
    await auth.generate("u", secret="again", namespace="team")  # the same id, a new account
    with pytest.raises(errors.Unauthorized):
        await auth.token(refresh_token="late-after-delete", namespace="team")
    fresh = await auth.token(id="u", secret="again", namespace="team")
    assert await auth.token(refresh_token=fresh.refresh_token, namespace="team")


async def test_guessing_from_one_address_locks_nobody_out_elsewhere(auth: StoreAuth) -> None:
    for _ in range(5):
        with pytest.raises(errors.Unauthorized):
            await auth.token(id="u", secret="guess", namespace="team", client="10.0.0.66")
    with pytest.raises(errors.MicroError) as caught:
        await auth.token(id="u", secret="right", namespace="team", client="10.0.0.66")
    assert caught.value.code == 429
    assert await auth.token(id="u", secret="right", namespace="team", client="10.0.0.7")


class CountingHasher(PasswordHasher):
    """Counts the hashes checked: what a login costs, whoever it names."""

    def __init__(self, inner: PasswordHasher) -> None:
        super().__init__(
            time_cost=inner.time_cost,
            memory_cost=inner.memory_cost,
            parallelism=inner.parallelism,
        )
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


async def test_an_unknown_account_costs_a_hash_as_a_known_one_does(
    store: MemoryStore, keys: KeyPair, hasher: PasswordHasher
) -> None:
    counting = CountingHasher(hasher)
    auth = StoreAuth(store, keys, hasher=counting)
    await auth.generate("u", secret="right", namespace="team")
    answers = []
    for id in ("u", "nobody"):
        before = counting.verified
        with pytest.raises(errors.Unauthorized) as caught:
            await auth.token(id=id, secret="wrong", namespace="team")
        assert counting.verified == before + 1
        answers.append(caught.value.detail)
    assert answers[0] == answers[1]
