"""Auth on a store: accounts, refresh tokens and rules in table ``auth`` of database ``micro``.

Keys, as in Micro (``<ns>`` = namespace)::

    account/<ns>/<id>                      the account, with the argon2 hash of its secret
    accountByName/<ns>/<name>              the id of the account with that name
    refresh/<ns>/<sha256 of token>         the account id a refresh token belongs to
    refreshByAccount/<ns>/<id>/<sha256>    the same, found by account (to revoke them all)
    rules/<ns>/<id>, rulesSet/<ns>         rules (see :mod:`micro.auth._rulebook`)

Secrets and refresh tokens are never stored or logged in clear. Refresh tokens live
``refresh_expiry`` seconds from their last use. Account writes of one namespace are
serialised in this process; watchers of rules hear of changes made in this process, and,
through :class:`~micro.peers.Peers`, in the other replicas of a cluster. Login throttling
counts per replica.
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
from micro.auth._checks import check_expiry, check_id, check_namespace
from micro.auth._rulebook import RuleBook
from micro.auth._throttle import Throttle
from micro.auth.base import ADMIN_SCOPE, Account, Auth, Rule, RulesWatcher, Token
from micro.auth.keys import KeyPair
from micro.peers import Peers
from micro.store.base import Store

__all__ = ["REFRESH_EXPIRY", "StoreAuth"]

log = logging.getLogger("micro.auth")

REFRESH_EXPIRY = 90 * 24 * 3600.0
"""How long an unused refresh token lives."""

_TOKEN = "auth.Auth.Token"


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
    ) -> None:
        if not keys.can_sign:
            raise ValueError("StoreAuth needs a key pair with its private key")
        self._keys = keys
        self._hasher = hasher or PasswordHasher()
        self._refresh_expiry = refresh_expiry
        self._clock = clock
        self._throttle = Throttle(clock)
        self._locks: dict[str, asyncio.Lock] = {}
        self._book = AccountBook(store, database, table)
        self._rules = RuleBook(store, database, table)
        self._peers = peers
        if peers is not None:  # rules changed on another replica: this one's doors reload
            peers.listen("rules", self._rules.hub.notify)

    def _lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    # -- secrets --------------------------------------------------------------------------

    async def _check_secret(self, stored: Stored, secret: str, error_id: str) -> None:
        """Unauthorized ``Secret not correct`` unless ``secret`` is the account's; throttled.

        The attempt counts as a failure until proven right, so a burst of parallel
        guesses cannot slip past the limit while the hashes are being computed.
        """
        key = (stored.issuer, stored.id)
        self._throttle.check(key, error_id)
        locks = self._throttle.failed(key)
        try:
            await asyncio.to_thread(self._hasher.verify, stored.hash, secret)
        except (VerificationError, InvalidHashError):
            if locks:
                log.warning(
                    "too many failed logins for account %r of namespace %r: locked",
                    stored.id,
                    stored.issuer,
                )
            raise errors.Unauthorized(error_id, "Secret not correct") from None
        self._throttle.succeeded(key)
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
        self._throttle.succeeded((namespace, id))
        log.info("deleted account %r of namespace %r", id, namespace)

    async def change_secret(
        self, id: str, *, new_secret: str, old_secret: str = "", namespace: str = "micro"
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
            await self._check_secret(stored, old_secret, where)
        new_hash = await asyncio.to_thread(self._hasher.hash, new_secret)
        async with self._lock(namespace):
            stored = await self._book.get(id, namespace)
            if stored is None:
                raise errors.NotFound(where, "Account not found with this ID")
            stored.hash = new_hash
            stored.epoch = secrets.token_hex(8)
            await self._book.put(stored)
            # A changed secret ends every session: a stolen refresh token dies with it.
            await self._book.drop_refresh_tokens(id, namespace)
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
    ) -> Token:
        check_namespace(namespace, _TOKEN)
        life = check_expiry(expiry, _TOKEN)
        if refresh_token:
            stored = await self._refresh(refresh_token, namespace)
        elif id:
            stored = await self._login(id, secret, namespace)
            refresh_token = secrets.token_urlsafe(32)
        else:
            raise errors.BadRequest(_TOKEN, "Credentials or a refresh token required")
        await self._book.keep_refresh(refresh_token, stored, self._refresh_expiry)
        now = self._clock()
        access = self._keys.sign(stored.account(), expiry=life, now=now)
        created = int(now)
        return Token(access, refresh_token, created, created + math.ceil(life))

    async def _login(self, id: str, secret: str, namespace: str) -> Stored:
        stored = await self._book.find(id, namespace)
        if stored is None:
            raise errors.Unauthorized(_TOKEN, "Account not found with this ID")
        await self._check_secret(stored, secret, _TOKEN)
        return stored

    async def _refresh(self, refresh_token: str, namespace: str) -> Stored:
        stored = await self._book.refresh_owner(refresh_token, namespace)
        if stored is None:
            await self._book.drop_refresh(refresh_token, namespace)
            raise errors.Unauthorized(_TOKEN, "invalid refresh token")
        return stored

    async def inspect(self, token: str) -> Account:
        return self._keys.inspect(token, now=self._clock())

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
