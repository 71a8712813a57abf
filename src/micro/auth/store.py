"""Auth on a store: accounts, refresh tokens and rules in table ``auth`` of database ``micro``.

Keys, as in Micro (``<ns>`` = namespace)::

    account/<ns>/<id>                      the account, with the argon2 hash of its secret
    accountByName/<ns>/<name>              the id of the account with that name
    refresh/<ns>/<sha256 of token>         the account id a refresh token belongs to
    refreshByAccount/<ns>/<id>/<sha256>    the same, found by account (to revoke them all)
    revoked/<ns>/<id>                      the epoch the account's tokens must carry ("-":
                                           none may), while an older token could live
    rules/<ns>/<id>, rulesSet/<ns>         rules (see :mod:`micro.auth._rulebook`)

Secrets and refresh tokens are never stored or logged in clear. Refresh tokens live
``refresh_expiry`` seconds from their last use; access tokens at most ``token_ttl``
(``MICRO_AUTH_TOKEN_TTL``), whatever a caller asks. An access token carries its account's
*epoch*, made anew when the account is created or its secret changes: changing a secret or
deleting an account writes a revocation that every door reads, so the account's earlier
tokens stop working at once, not when they expire. Account writes of one namespace are
serialised in this process; watchers of rules (the doors) hear of rule changes and
revocations made in this process, and, through :class:`~micro.peers.Peers`, in the other
replicas of a cluster. Wrong secrets are throttled per account and client address (so
nobody can lock an account out for others), per replica; an unknown account costs the
same time as a wrong secret.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import math
import secrets
import time
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from micro import errors
from micro.auth._accounts import AccountBook, Stored
from micro.auth._checks import DEFAULT_EXPIRY, check_expiry, check_id, check_namespace
from micro.auth._rulebook import RuleBook
from micro.auth._throttle import Throttle
from micro.auth.base import ADMIN_SCOPE, Account, Auth, Rule, RulesWatcher, Token, audience
from micro.auth.keys import KeyPair
from micro.peers import Peers
from micro.store.base import Store

__all__ = ["EXCHANGE_LIFE", "REFRESH_EXPIRY", "WRONG_LOGIN", "StoreAuth"]

log = logging.getLogger("micro.auth")

REFRESH_EXPIRY = 90 * 24 * 3600.0
"""How long an unused refresh token lives."""

_TOKEN = "auth.Auth.Token"
WRONG_LOGIN = "Account not found or secret not correct"
"""One answer for an unknown account and a wrong secret: which it was is not told."""
EXCHANGE_LIFE = 300.0
"""The longest a token bound to one service lives (it lives no longer than the one it was
exchanged for, either)."""
_DELETED = "-"


class StoreAuth(Auth):
    """Accounts, tokens and rules kept on any :class:`~micro.store.base.Store`.

    ``keys`` must be able to sign. ``hasher`` defaults to argon2-cffi's recommended
    parameters; ``clock`` (unix seconds) is for tests that move time. ``peers`` carries
    rule changes to and from the other replicas of a cluster, whose doors cache rules.
    """

    name = "store"

    def __init__(
        self,
        store: Store,
        keys: KeyPair,
        *,
        database: str = "micro",
        table: str = "auth",
        hasher: PasswordHasher | None = None,
        refresh_expiry: float = REFRESH_EXPIRY,
        clock: Callable[[], float] = time.time,
        peers: Peers | None = None,
        token_ttl: float = DEFAULT_EXPIRY,
    ) -> None:
        if not keys.can_sign:
            raise ValueError("StoreAuth needs a key pair with its private key")
        if not token_ttl > 0:
            raise ValueError("the access token life must be positive")
        self._keys = keys
        self._hasher = hasher or PasswordHasher()
        self._decoy_hash = ""
        self._refresh_expiry = refresh_expiry
        self.token_ttl = token_ttl
        """The longest an access token lives, in seconds."""
        self._clock = clock
        self._throttle = Throttle(clock)
        self._locks: dict[str, asyncio.Lock] = {}
        self._book = AccountBook(store, database, table)
        self._rules = RuleBook(store, database, table)
        self._peers = peers
        if peers is not None:  # changed on another replica: this one's doors reload
            peers.listen("rules", self._rules.hub.notify)

    def _lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    # -- secrets --------------------------------------------------------------------------

    async def _check_secret(
        self,
        stored: Stored | None,
        secret: str,
        error_id: str,
        *,
        who: tuple[str, str],
        client: str,
        wrong: str = "Secret not correct",
    ) -> Stored:
        """``stored`` when ``secret`` is its secret; Unauthorized ``wrong`` otherwise, or
        when there is no such account (``stored`` is ``None``: a decoy hash is checked,
        so that costs the same time). Throttled per account (``who``: namespace and id)
        and ``client`` address.

        The attempt counts as a failure until proven right, so a burst of parallel
        guesses cannot slip past the limit while the hashes are being computed.
        """
        key = (*who, client)
        self._throttle.check(key, error_id)
        locks = self._throttle.failed(key)
        try:
            if stored is None:
                await asyncio.to_thread(self._hasher.verify, await self._decoy(), secret)
                raise VerificationError
            await asyncio.to_thread(self._hasher.verify, stored.hash, secret)
        except (VerificationError, InvalidHashError):
            if locks:
                log.warning(
                    "too many failed logins for account %r of namespace %r from %s: locked",
                    who[1],
                    who[0],
                    client or "this process",
                )
            raise errors.Unauthorized(error_id, wrong) from None
        self._throttle.succeeded(key)
        await self._rehash(stored, secret)
        return stored

    async def _decoy(self) -> str:
        """A hash of nobody's secret, to check when there is no account to check against."""
        if not self._decoy_hash:
            self._decoy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(16))
        return self._decoy_hash

    async def _rehash(self, stored: Stored, secret: str) -> None:
        """Store a new hash of a right secret when the hasher's parameters have grown."""
        if self._hasher.check_needs_rehash(stored.hash):
            new_hash = await asyncio.to_thread(self._hasher.hash, secret)
            async with self._lock(stored.issuer):
                current = await self._book.get(stored.id, stored.issuer)
                if current is not None and current.hash == stored.hash:  # not changed since
                    current.hash = new_hash
                    await self._book.put(current)

    # -- accounts -------------------------------------------------------------------------

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
        where = "auth.Auth.Generate"
        check_namespace(namespace, where)
        check_id(id, "ID", where)
        name = name or id
        check_id(name, "Name", where)
        secret = secret or secrets.token_urlsafe(32)
        meta = {"created": str(int(self._clock())), **(metadata or {})}
        stored = Stored(
            id=id,
            type=type or "user",
            issuer=namespace,
            hash=await asyncio.to_thread(self._hasher.hash, secret),
            epoch=secrets.token_hex(8),
            scopes=list(scopes or []),
            metadata=meta,
            name=name,
        )
        async with self._lock(namespace):
            if await self._book.find(id, namespace) is not None:
                raise errors.Conflict(where, "Account with this ID already exists")
            if await self._book.find(name, namespace) is not None:
                raise errors.Conflict(where, "Account with this name already exists")
            await self._book.put(stored)
            if id in await self._book.revoked(namespace):  # made again: its new tokens count
                await self._revoke(stored.issuer, stored.id, stored.epoch)
        log.info("created %s account %r in namespace %r", stored.type, id, namespace)
        account = stored.account()
        account.secret = secret
        return account

    async def accounts(self, *, namespace: str = "micro") -> builtins.list[Account]:
        check_namespace(namespace, "auth.Accounts.List")
        return [stored.account() for stored in await self._book.all(namespace)]

    async def delete_account(self, id: str, *, namespace: str = "micro") -> None:
        where = "auth.Accounts.Delete"
        check_namespace(namespace, where)
        check_id(id, "ID", where)
        async with self._lock(namespace):
            stored = await self._book.get(id, namespace)
            if stored is None:
                raise errors.NotFound(where, "Account not found with this ID")
            await self._book.delete(stored)
            await self._revoke(namespace, id, _DELETED)
        self._throttle.forget(namespace, id)
        log.info("deleted account %r of namespace %r", id, namespace)

    async def change_secret(
        self,
        id: str,
        *,
        new_secret: str,
        old_secret: str = "",
        namespace: str = "micro",
        client: str = "",
    ) -> None:
        where = "auth.Accounts.ChangeSecret"
        check_namespace(namespace, where)
        check_id(id, "ID", where)
        if not new_secret:
            raise errors.BadRequest(where, "New secret missing")
        stored = await self._book.get(id, namespace)
        if stored is None:
            raise errors.NotFound(where, "Account not found with this ID")
        if old_secret:
            await self._check_secret(stored, old_secret, where, who=(namespace, id), client=client)
        new_hash = await asyncio.to_thread(self._hasher.hash, new_secret)
        async with self._lock(namespace):
            stored = await self._book.get(id, namespace)
            if stored is None:
                raise errors.NotFound(where, "Account not found with this ID")
            stored.hash = new_hash
            stored.epoch = secrets.token_hex(8)
            await self._book.put(stored)
            # A changed secret ends every session: a stolen refresh token dies with it, and
            # so do the access tokens bought with the old secret.
            await self._book.drop_refresh_tokens(id, namespace)
            await self._revoke(namespace, id, stored.epoch)
        log.info("changed the secret of account %r of namespace %r", id, namespace)

    @property
    def keys(self) -> KeyPair:
        """The key pair tokens are signed and verified with (doors in this process use it)."""
        return self._keys

    async def bootstrap(self, admin_password: str) -> Account | None:
        """Create ``admin`` (a user with scope ``admin`` in namespace ``micro``) unless
        ``micro`` has a user account already; the new account, or ``None``."""
        if not admin_password:
            raise ValueError("the admin password must not be empty")
        if any(a.type == "user" for a in await self.accounts(namespace="micro")):
            return None
        try:
            return await self.generate(
                "admin", secret=admin_password, type="user", scopes=[ADMIN_SCOPE]
            )
        except errors.Conflict:
            return None

    # -- tokens ---------------------------------------------------------------------------

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
        check_namespace(namespace, _TOKEN)
        life = check_expiry(expiry, self.token_ttl, _TOKEN)
        if refresh_token:
            stored = await self._refresh(refresh_token, namespace)
        elif id:
            found = await self._book.find(id, namespace)
            stored = await self._check_secret(
                found,
                secret,
                _TOKEN,
                who=(namespace, found.id if found is not None else id),
                client=client,
                wrong=WRONG_LOGIN,
            )
            refresh_token = secrets.token_urlsafe(32)
        else:
            raise errors.BadRequest(_TOKEN, "Credentials or a refresh token required")
        await self._book.keep_refresh(refresh_token, stored, self._refresh_expiry)
        now = self._clock()
        access = self._keys.sign(stored.account(), expiry=life, now=now, epoch=stored.epoch)
        created = int(now)
        return Token(access, refresh_token, created, created + math.ceil(life))

    async def exchange(self, token: str, *, service: str, namespace: str) -> Token:
        where = "auth.Auth.Exchange"
        check_namespace(namespace, where)
        check_id(service, "Service", where)
        now = self._clock()
        verified = self._keys.verified(token, now=now)
        account = verified.account
        current = (await self._book.revoked(account.issuer)).get(account.id)
        if current is not None and current != verified.epoch:
            raise errors.Unauthorized(where, "token revoked: log in again")
        life = min(verified.expires - now, EXCHANGE_LIFE)
        bound = self._keys.sign(
            account,
            expiry=life,
            now=now,
            epoch=verified.epoch,
            audience=audience(namespace, service),
        )
        return Token(bound, "", int(now), int(now + life))

    async def revoked(self, *, namespace: str = "micro") -> dict[str, str]:
        check_namespace(namespace, "auth.Accounts.Revoked")
        return await self._book.revoked(namespace)

    async def _revoke(self, namespace: str, id: str, epoch: str) -> None:
        """Record that only tokens of ``epoch`` are valid for the account, for as long as
        any other could live, and tell the doors (in this replica and the others)."""
        await self._book.revoke(namespace, id, epoch, self.token_ttl + 60)
        self._rules.hub.notify(namespace)
        await self._announce_rules(namespace)

    async def _refresh(self, refresh_token: str, namespace: str) -> Stored:
        stored = await self._book.refresh_owner(refresh_token, namespace)
        if stored is None:
            await self._book.drop_refresh(refresh_token, namespace)
            raise errors.Unauthorized(_TOKEN, "invalid refresh token")
        return stored

    async def inspect(self, token: str) -> Account:
        verified = self._keys.verified(token, now=self._clock())
        account = verified.account
        current = (await self._book.revoked(account.issuer)).get(account.id)
        if current is not None and current != verified.epoch:
            raise errors.Unauthorized("auth.Auth.Inspect", "token revoked")
        return account

    async def revoke(self, refresh_token: str, *, namespace: str = "micro") -> None:
        check_namespace(namespace, "auth.Auth.Revoke")
        if refresh_token:
            await self._book.drop_refresh(refresh_token, namespace)

    async def public_key(self) -> str:
        return self._keys.public_pem

    # -- rules ----------------------------------------------------------------------------

    async def grant(self, rule: Rule, *, namespace: str = "micro") -> None:
        await self._rules.create(rule, namespace)
        await self._announce_rules(namespace)

    async def revoke_rule(self, id: str, *, namespace: str = "micro") -> None:
        await self._rules.delete(id, namespace)
        await self._announce_rules(namespace)

    async def _announce_rules(self, namespace: str) -> None:
        """Tell the other replicas (this one's doors heard it from the rule book)."""
        if self._peers is not None:
            await self._peers.announce("rules", namespace)

    async def rules(self, *, namespace: str = "micro") -> builtins.list[Rule]:
        return await self._rules.list(namespace)

    def watch_rules(self, namespace: str | None = "micro") -> RulesWatcher:
        return self._rules.watch(namespace)

    async def close(self) -> None:
        """End every rule watcher (so watch streams let a server stop at once)."""
        if self._peers is not None:
            await self._peers.close()
        self._rules.hub.close()
