"""The check every door makes: who is calling, and may they call this?

Used by every service's server (core and user) and by the proxy before it forwards. A
token is verified once (locally, with the server's public key) and cached until it
expires; a namespace's rules, and the accounts of it whose tokens were revoked, are
fetched once and cached until the auth service says they changed; and the decision for
(token, namespace, service, endpoint) is cached on top, so an authenticated call costs a
dictionary lookup after the first. Every cache is bounded by bytes: what a caller sends
(tokens, namespaces, service names) can never grow it past its budget.

A door takes the tokens meant for it: the platform's doors take platform tokens, a user
service's door only tokens bound to that service (:func:`micro.auth.keys.audience`).
After admitting a call, :meth:`Door.present` takes the token out of the call's metadata
and writes who the caller is instead (``micro-caller-*``), so a handler learns its caller
and never holds a credential it could replay.

Failures use Micro's words: 401 ``Unauthorized call made to S:E`` without an account,
403 ``Forbidden call made to S:E by <id>`` with one.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Final, Literal, TypeVar

from micro import errors
from micro._bounded import BoundedDict
from micro.auth.base import Account, Resource, Rule, Verified
from micro.auth.rules import verify

__all__ = [
    "CALLER_KEYS",
    "MAX_AUTHORIZATION",
    "Door",
    "RevocationSource",
    "RulesSource",
    "TokenVerifier",
    "bearer",
]

TokenVerifier = Callable[[str], Awaitable[Verified]]
"""Verifies an access token (its account, expiry and epoch); Unauthorized if bad."""

RulesSource = Callable[[str], Awaitable[list[Rule]]]
"""The rules of a namespace."""

RevocationSource = Callable[[str], Awaitable[dict[str, str]]]
"""The accounts of a namespace whose older tokens are revoked: account id -> the epoch a
token must carry to be valid (``"-"`` for a deleted account: none is)."""

CALLER_KEYS: Final = (
    "micro-caller-id",
    "micro-caller-namespace",
    "micro-caller-type",
    "micro-caller-scopes",
)
"""The metadata a door writes about the verified caller; never taken from a caller."""
_CALLER_KEY_SET: Final = frozenset(CALLER_KEYS)

MAX_AUTHORIZATION: Final = 16 * 1024
"""The longest ``authorization`` value looked at (a token is about 1 KB)."""

_CACHE_BYTES: Final = 32 * 1024 * 1024
"""The budget of each of a door's caches."""

_Decision = Account | errors.MicroError | None


def bearer(header: str) -> str:
    """The token in an ``authorization`` value: ``Bearer <t>`` or ``Basic base64(x:<t>)``."""
    if len(header) > MAX_AUTHORIZATION:
        raise errors.Unauthorized("micro.auth", "invalid authorization header: too long")
    scheme, _, value = header.partition(" ")
    kind = scheme.lower()
    if kind == "bearer" and value:
        return value.strip()
    if kind == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if ":" in decoded:
            return decoded.split(":", 1)[1]
    raise errors.Unauthorized("micro.auth", "invalid authorization header: expected Bearer <token>")


class Door:
    """Verifies callers against the rules of a namespace, with caches.

    ``revocations`` (optional) says whose tokens were revoked; ``admins_pass`` names the
    services whose every endpoint a namespace's admins may call whatever its rules say:
    the platform's own, so a namespace can never lock its admins out of fixing its rules.
    """

    def __init__(
        self,
        verify_token: TokenVerifier,
        rules: RulesSource,
        *,
        revocations: RevocationSource | None = None,
        namespace: str | None = None,
        rules_ttl: float = 60.0,
        admins_pass: frozenset[str] = frozenset(),
        cache_bytes: int = _CACHE_BYTES,
    ) -> None:
        self._verify_token = verify_token
        self._rules_source = rules
        self._revocations_source = revocations
        self.namespace = namespace
        """Fixed namespace (a user service's own); ``None`` takes it from each call."""
        self._rules_ttl = rules_ttl
        self._admins_pass = admins_pass
        self._tokens: BoundedDict[str, Verified] = BoundedDict(cache_bytes)
        self._rules: BoundedDict[str, tuple[list[Rule], float]] = BoundedDict(cache_bytes)
        self._revoked: BoundedDict[str, tuple[dict[str, str], float]] = BoundedDict(cache_bytes)
        self._decisions: BoundedDict[tuple[str, str, str, str], _Decision] = BoundedDict(
            cache_bytes
        )
        self._identities: BoundedDict[str, dict[str, str]] = BoundedDict(cache_bytes)
        """What :meth:`present` writes for each verified token."""

    def namespace_of(self, metadata: dict[str, str], account: Account | None) -> str:
        """The namespace a call acts in: the door's own, else the header, else the
        account's issuer, else ``micro``."""
        return (
            self.namespace
            or metadata.get("micro-namespace")
            or (account.issuer if account is not None else "")
            or "micro"
        )

    def admit_cached(
        self, metadata: dict[str, str], service: str, endpoint: str
    ) -> Account | Literal[False] | None:
        """The cached decision, without awaiting: the account (or ``None``, anonymous) when
        admitted before, ``False`` when nothing usable is cached (call :meth:`admit`).
        Raises the cached 401/403."""
        header = metadata.get("authorization", "")
        key = (header, metadata.get("micro-namespace", ""), service, endpoint)
        decided: _Decision | Literal[False] = self._decisions.get(key, False)
        if decided is False:
            return False
        if isinstance(decided, errors.MicroError):
            raise decided
        if decided is not None:
            verified = self._tokens.get(header)
            if verified is None or verified.expires < time.time():
                return False
        if "micro-namespace" not in metadata:
            metadata["micro-namespace"] = self.namespace_of(metadata, decided)
        return decided

    async def admit(self, metadata: dict[str, str], service: str, endpoint: str) -> Account | None:
        """The verified caller (``None`` = anonymous) if it may call ``service``'s ``endpoint``;
        raises 401/403 otherwise. Sets ``micro-namespace`` in ``metadata`` when absent."""
        cached = self.admit_cached(metadata, service, endpoint)
        if cached is not False:
            return cached
        header = metadata.get("authorization", "")
        key = (header, metadata.get("micro-namespace", ""), service, endpoint)
        account = (await self.verified(header)).account if header else None
        namespace = self.namespace_of(metadata, account)
        rules = await self.rules(namespace)
        outcome: Account | errors.MicroError | None = account
        if not self._allowed(rules, account, service, endpoint, namespace):
            if account is None:
                outcome = errors.Unauthorized(
                    service, f"Unauthorized call made to {service}:{endpoint}"
                )
            else:
                outcome = errors.Forbidden(
                    service, f"Forbidden call made to {service}:{endpoint} by {account.id}"
                )
        self._decisions.set(key, outcome)
        if isinstance(outcome, errors.MicroError):
            raise outcome
        metadata.setdefault("micro-namespace", namespace)
        return outcome

    def _allowed(
        self,
        rules: list[Rule],
        account: Account | None,
        service: str,
        endpoint: str,
        namespace: str,
    ) -> bool:
        if verify(rules, account, Resource("service", service, endpoint), namespace):
            return True
        return (
            account is not None and service in self._admins_pass and account.administers(namespace)
        )

    def present(self, metadata: dict[str, str], account: Account | None) -> None:
        """After admitting a call: take its credential out of ``metadata`` and say who the
        caller is in :data:`CALLER_KEYS` (removed for an anonymous caller), so what a
        handler sees can neither be replayed nor forged by a caller."""
        header = metadata.pop("authorization", "")
        if account is None:
            if not _CALLER_KEY_SET.isdisjoint(metadata):
                for key in CALLER_KEYS:
                    metadata.pop(key, None)
            return
        identity = self._identities.get(header)
        if identity is None:
            identity = {
                "micro-caller-id": account.id,
                "micro-caller-namespace": account.issuer,
                "micro-caller-type": account.type,
                "micro-caller-scopes": ",".join(account.scopes),
            }
            self._identities.set(header, identity)
        metadata.update(identity)

    def verified_cached(self, header: str) -> Verified | None:
        """What :meth:`verified` would say, when it is cached and current (no await)."""
        cached = self._tokens.get(header)
        if cached is not None and cached.expires > time.time():
            return cached
        return None

    async def verified(self, header: str) -> Verified:
        """What the token of an ``authorization`` value says; Unauthorized when it is bad,
        expired, not meant for this door, or revoked."""
        cached = self._tokens.get(header)
        if cached is not None and cached.expires > time.time():
            return cached
        verified = await self._verify_token(bearer(header))
        if self._revocations_source is not None:
            account = verified.account
            current = (await self.revoked(account.issuer)).get(account.id)
            if current is not None and current != verified.epoch:
                raise errors.Unauthorized(
                    "micro.auth",
                    "token revoked: its account was deleted or its secret changed; log in again",
                )
        self._tokens.set(header, verified)
        return verified

    async def account(self, header: str) -> Account:
        """The account of an ``authorization`` value; Unauthorized when the token is bad."""
        return (await self.verified(header)).account

    async def rules(self, namespace: str) -> list[Rule]:
        """The namespace's rules, cached until :meth:`forget` or the TTL."""
        return await _cached(self._rules, namespace, self._rules_source, self._rules_ttl)

    async def revoked(self, namespace: str) -> dict[str, str]:
        """The namespace's revoked accounts, cached until :meth:`forget` or the TTL."""
        if self._revocations_source is None:
            return {}
        return await _cached(self._revoked, namespace, self._revocations_source, self._rules_ttl)

    def forget(self, namespace: str | None = None) -> None:
        """The rules or accounts of a namespace (``None``: of all) changed: drop what is
        cached of them, every verified token and every decision."""
        if namespace is None:
            self._rules.clear()
            self._revoked.clear()
        else:
            self._rules.pop(namespace, None)
            self._revoked.pop(namespace, None)
        self._tokens.clear()
        self._decisions.clear()
        self._identities.clear()


T = TypeVar("T")


async def _cached(
    cache: BoundedDict[str, tuple[T, float]],
    namespace: str,
    source: Callable[[str], Awaitable[T]],
    ttl: float,
) -> T:
    """What ``source`` says of ``namespace``, from ``cache`` while younger than ``ttl``."""
    cached = cache.get(namespace)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    value = await source(namespace)
    cache.set(namespace, (value, now + ttl))
    return value
