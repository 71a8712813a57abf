"""The auth interface: accounts, tokens and rules, per namespace.

An *account* belongs to one namespace (its ``issuer``) and has scopes (``admin``,
``service``, ...). Logging in with an id (or name) and a secret gives a short-lived JWT
*access token*, which every door verifies locally with the server's public key, and an
opaque *refresh token* that buys new access tokens until it is revoked (logout) or its
account is deleted. *Rules* say which scopes may call which resources; the algorithm is
Micro's (:func:`micro.auth.rules.verify`).
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

import msgspec

from micro import errors
from micro.watch import Subscription

__all__ = [
    "ADMIN_SCOPE",
    "DEFAULT_RULE",
    "SERVICE_SCOPE",
    "Access",
    "Account",
    "Auth",
    "Resource",
    "Rule",
    "RulesWatcher",
    "Token",
    "Verified",
    "audience",
]

ADMIN_SCOPE: Final = "admin"
SERVICE_SCOPE: Final = "service"

Access = Literal["granted", "denied"]


class Account(msgspec.Struct, omit_defaults=True):
    """Who is calling. ``secret`` is set only in the answer that creates the account."""

    id: str
    type: str = "user"
    issuer: str = "micro"
    scopes: list[str] = []
    metadata: dict[str, str] = {}
    name: str = ""
    secret: str = ""

    def has_scope(self, scope: str) -> bool:
        """True when the account holds ``scope``."""
        return scope in self.scopes

    @property
    def is_service(self) -> bool:
        """A service's own account (what the runtime gives each service it runs)."""
        return self.type == "service"

    @property
    def is_platform_admin(self) -> bool:
        """An admin of ``micro``: may act in every namespace. Only users are admins; a
        service account never is, whatever its scopes (a service's code could otherwise
        hand its secret to anyone)."""
        return self.issuer == "micro" and self.type == "user" and ADMIN_SCOPE in self.scopes

    def administers(self, namespace: str) -> bool:
        """True for an admin of ``namespace`` (a user of it with scope ``admin``) and for
        platform admins."""
        return self.is_platform_admin or (
            self.issuer == namespace and self.type == "user" and ADMIN_SCOPE in self.scopes
        )


def audience(namespace: str, service: str) -> str:
    """The ``aud`` claim of a token for calling ``service`` of ``namespace`` and nothing
    else (:mod:`micro.auth.bound`)."""
    return f"service:{namespace}/{service}"


@dataclass(frozen=True, slots=True)
class Verified:
    """What a door learns from a valid access token."""

    account: Account
    expires: float
    """Unix seconds."""
    epoch: str
    """The account's epoch when the token was issued (empty in tokens of older servers)."""


class Token(msgspec.Struct):
    """What logging in returns. ``created`` and ``expiry`` are unix seconds (of the access token)."""

    access_token: str
    refresh_token: str
    created: int
    expiry: int


class Resource(msgspec.Struct, frozen=True):
    """What a rule is about: ``service:<name>:<Handler.Method>`` (``*`` matches anything)."""

    type: str
    name: str
    endpoint: str

    @classmethod
    def parse(cls, text: str) -> Resource:
        """``"type:name:endpoint"``; ``ValueError`` with Micro's message otherwise."""
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError("Invalid resource, must be in the format type:name:endpoint")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{self.endpoint}"


class Rule(msgspec.Struct, omit_defaults=True):
    """Grant or deny ``scope`` access to ``resource``; higher ``priority`` is checked first.

    Scope ``""`` is public (applies even without an account), ``*`` any account of the
    namespace, ``+`` any account of any namespace, anything else a scope to hold.
    """

    id: str
    resource: Resource
    scope: str = ""
    access: Access = "granted"
    priority: int = 0


DEFAULT_RULE: Final = Rule(
    id="default", resource=Resource("*", "*", "*"), scope="", access="granted", priority=0
)
"""The rule every namespace starts with: everything public, as in Micro."""


class RulesWatcher(Subscription[str]):
    """An async iterator of the namespaces whose rules changed, to stop when no longer read.

    The first item comes as soon as the watch is in place and means "reload now" (the
    watched namespace, or ``*`` when watching every namespace), so a cache filled before
    it can never miss a change. Then one item per change; a reader slower than the
    changes may see several changes of one namespace as one item.
    """

    @abstractmethod
    async def next(self) -> str:
        """The next namespace; ``StopAsyncIteration`` once stopped; the error that ended
        the watch (after which it is stopped)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop watching; a pending :meth:`next` ends."""


class Auth(ABC):
    """Accounts, tokens and rules. Implementations: ``store`` (on the store) and ``rpc``."""

    name: ClassVar[str]

    @abstractmethod
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
        """Create an account (a random secret when none is given); the answer carries the
        secret in clear, the only time it is ever shown. Conflict when the id or name is
        taken in the namespace."""

    @abstractmethod
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
        """Log in with id (or name) and secret, or refresh with a refresh token; ``expiry``
        is the access token's life in seconds (0 = the default; never more than the
        server's longest). Unauthorized when wrong, saying neither whether the account
        exists nor taking less time when it does not; repeated wrong secrets from one
        ``client`` address are throttled (429 with a wait). ``client`` is filled in by
        the server from where the attempt came; callers over RPC cannot set it."""

    @abstractmethod
    async def exchange(self, token: str, *, service: str, namespace: str) -> Token:
        """A token for calling ``service`` of ``namespace`` as the account of ``token`` (a
        platform access token): only that service's door takes it, so the service cannot
        replay it anywhere. It lives as long as ``token`` does, at most 5 minutes, and has
        no refresh token. Unauthorized when ``token`` is not a valid platform token."""

    @abstractmethod
    async def revoked(self, *, namespace: str = "micro") -> dict[str, str]:
        """The accounts of ``namespace`` whose earlier tokens are revoked (their secret
        changed, or they were deleted): account id -> the epoch a token of it must carry
        (``-``: none is valid). Doors read it to refuse revoked tokens."""

    @abstractmethod
    async def inspect(self, token: str) -> Account:
        """The account an access token was issued to; Unauthorized when the token is not
        valid (tampered, expired, another server's, ``alg: none``)."""

    @abstractmethod
    async def revoke(self, refresh_token: str, *, namespace: str = "micro") -> None:
        """Forget a refresh token (logout); unknown tokens are not an error."""

    @abstractmethod
    async def accounts(self, *, namespace: str = "micro") -> builtins.list[Account]:
        """Every account of the namespace, without secrets, sorted by id."""

    @abstractmethod
    async def delete_account(self, id: str, *, namespace: str = "micro") -> None:
        """Delete an account, its refresh tokens, and (revoked) its access tokens;
        NotFound when it does not exist."""

    @abstractmethod
    async def change_secret(
        self,
        id: str,
        *,
        new_secret: str,
        old_secret: str = "",
        namespace: str = "micro",
        client: str = "",
    ) -> None:
        """Set a new secret; ``old_secret`` must match unless the caller may skip it (the
        handler decides: platform admins and the namespace's admins). Every token of the
        account bought before is revoked. ``client`` as for :meth:`token`."""

    @abstractmethod
    async def grant(self, rule: Rule, *, namespace: str = "micro") -> None:
        """Create a rule; Conflict when its id exists."""

    @abstractmethod
    async def revoke_rule(self, id: str, *, namespace: str = "micro") -> None:
        """Delete a rule; NotFound when it does not exist."""

    @abstractmethod
    async def rules(self, *, namespace: str = "micro") -> builtins.list[Rule]:
        """The namespace's rules: ``[DEFAULT_RULE]`` until it has rules of its own (a
        namespace whose ``default`` was deleted keeps it deleted)."""

    @abstractmethod
    async def public_key(self) -> str:
        """The PEM public key access tokens are verified with (doors verify locally)."""

    def watch_rules(self, namespace: str | None = "micro") -> RulesWatcher:
        """Hear when the rules of ``namespace`` (``None``: of every namespace) change, so a
        door can drop its cached rules. Optional: NotImplemented where not supported."""
        raise errors.NotImplemented("auth", f"the {self.name} auth cannot watch rules")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the implementation holds."""
