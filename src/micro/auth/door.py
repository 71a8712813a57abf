"""The check every door makes: who is calling, and may they call this?

Used by every service's server (core and user) and by the proxy before it forwards. A
token is verified once (locally, with the server's public key) and cached until it
expires; a namespace's rules are fetched once and cached until the auth service says
they changed; and the decision for (token, namespace, service, endpoint) is cached on
top, so an authenticated call costs a dictionary lookup after the first.

Failures use Micro's words: 401 ``Unauthorized call made to S:E`` without an account,
403 ``Forbidden call made to S:E by <id>`` with one.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Final

from micro import errors
from micro.auth.base import Account, Resource, Rule
from micro.auth.rules import verify

__all__ = ["Door", "RulesSource", "TokenVerifier"]

TokenVerifier = Callable[[str], Awaitable[tuple[Account, float]]]
"""Verifies an access token: (its account, its expiry as unix time); Unauthorized if bad."""

RulesSource = Callable[[str], Awaitable[list[Rule]]]
"""The rules of a namespace."""

_MAX_CACHED: Final = 100_000


def bearer(header: str) -> str:
    """The token in an ``authorization`` value: ``Bearer <t>`` or ``Basic base64(x:<t>)``."""
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
    """Verifies callers against the rules of a namespace, with caches."""

    def __init__(
        self,
        verify_token: TokenVerifier,
        rules: RulesSource,
        *,
        namespace: str | None = None,
        rules_ttl: float = 60.0,
    ) -> None:
        self._verify_token = verify_token
        self._rules_source = rules
        self.namespace = namespace
        """Fixed namespace (a user service's own); ``None`` takes it from each call."""
        self._rules_ttl = rules_ttl
        self._tokens: dict[str, tuple[Account, float]] = {}
        self._rules: dict[str, tuple[list[Rule], float]] = {}
        self._decisions: dict[tuple[str, str, str, str], Account | errors.MicroError | None] = {}

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
    ) -> Account | bool | None:
        """The cached decision, without awaiting: the account (or ``None``, anonymous) when
        admitted before, ``False`` when nothing usable is cached (call :meth:`admit`).
        Raises the cached 401/403."""
        header = metadata.get("authorization", "")
        key = (header, metadata.get("micro-namespace", ""), service, endpoint)
        if key not in self._decisions:
            return False
        decided = self._decisions[key]
        if isinstance(decided, errors.MicroError):
            raise decided
        if decided is not None and self._tokens.get(header, (None, 0.0))[1] < time.time():
            return False
        if "micro-namespace" not in metadata:
            metadata["micro-namespace"] = self.namespace_of(metadata, decided)
        return decided

    async def admit(self, metadata: dict[str, str], service: str, endpoint: str) -> Account | None:
        """The verified caller (``None`` = anonymous) if it may call ``service``'s ``endpoint``;
        raises 401/403 otherwise. Sets ``micro-namespace`` in ``metadata`` when absent."""
        cached = self.admit_cached(metadata, service, endpoint)
        if cached is not False:
            return cached if isinstance(cached, Account) else None
        header = metadata.get("authorization", "")
        key = (header, metadata.get("micro-namespace", ""), service, endpoint)
        account = await self.account(header) if header else None
        namespace = self.namespace_of(metadata, account)
        rules = await self.rules(namespace)
        outcome: Account | errors.MicroError | None = account
        if not verify(rules, account, Resource("service", service, endpoint), namespace):
            if account is None:
                outcome = errors.Unauthorized(
                    service, f"Unauthorized call made to {service}:{endpoint}"
                )
            else:
                outcome = errors.Forbidden(
                    service, f"Forbidden call made to {service}:{endpoint} by {account.id}"
                )
        if len(self._decisions) > _MAX_CACHED:
            self._decisions.clear()
        self._decisions[key] = outcome
        if isinstance(outcome, errors.MicroError):
            raise outcome
        metadata.setdefault("micro-namespace", namespace)
        return outcome

    async def account(self, header: str) -> Account:
        """The account of an ``authorization`` value; Unauthorized when the token is bad."""
        token = bearer(header)
        cached = self._tokens.get(header)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        account, expires = await self._verify_token(token)
        if len(self._tokens) > _MAX_CACHED:
            self._tokens.clear()
        self._tokens[header] = (account, expires)
        return account

    async def rules(self, namespace: str) -> list[Rule]:
        """The namespace's rules, cached until :meth:`forget_rules` or the TTL."""
        cached = self._rules.get(namespace)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        rules = await self._rules_source(namespace)
        self._rules[namespace] = (rules, now + self._rules_ttl)
        return rules

    def forget_rules(self, namespace: str | None = None) -> None:
        """Rules changed: drop the cached rules (of one namespace, or all) and decisions."""
        if namespace is None:
            self._rules.clear()
        else:
            self._rules.pop(namespace, None)
        self._decisions.clear()
