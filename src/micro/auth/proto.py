"""Request and response types of the ``auth`` RPC service (Micro's names and shapes).

Handlers ``Auth`` (Generate, Inspect, Token, Revoke, PublicKey, and our Exchange),
``Accounts`` (List, Delete, ChangeSecret, and our Revoked) and ``Rules`` (Create, Delete,
List, Watch). ``options.namespace`` defaults to the call's (``micro-namespace``) and, when
given, must be the same. Rules travel with ``access`` as Micro's enum names
(``GRANTED``/``DENIED``; any case, or the numbers 1/2, are accepted).
"""

from __future__ import annotations

import msgspec

from micro import errors
from micro.auth.base import Access, Account, Resource, Rule, Token

__all__ = [
    "ChangeSecretRequest",
    "CreateRuleRequest",
    "DeleteAccountRequest",
    "DeleteRuleRequest",
    "EmptyResponse",
    "ExchangeRequest",
    "GenerateRequest",
    "GenerateResponse",
    "InspectRequest",
    "InspectResponse",
    "ListAccountsRequest",
    "ListAccountsResponse",
    "ListRulesRequest",
    "ListRulesResponse",
    "Options",
    "PublicKeyResponse",
    "ResourceMessage",
    "RevokeRequest",
    "RevokedRequest",
    "RevokedResponse",
    "RuleMessage",
    "TokenRequest",
    "TokenResponse",
    "WatchRulesRequest",
    "WatchRulesResponse",
    "from_message",
    "to_message",
]


class Options(msgspec.Struct, omit_defaults=True, frozen=True):
    """``namespace``: the namespace to act in; the caller's when empty."""

    namespace: str = ""


class GenerateRequest(msgspec.Struct, omit_defaults=True):
    id: str = ""
    metadata: dict[str, str] = {}
    scopes: list[str] = []
    secret: str = ""
    type: str = ""
    provider: str = ""
    options: Options = Options()
    name: str = ""


class GenerateResponse(msgspec.Struct):
    account: Account


class InspectRequest(msgspec.Struct, omit_defaults=True):
    token: str = ""
    options: Options = Options()


class InspectResponse(msgspec.Struct):
    account: Account


class TokenRequest(msgspec.Struct, omit_defaults=True):
    """Log in (``id`` or name, and ``secret``) or refresh (``refresh_token``);
    ``token_expiry`` in seconds, 0 = 15 minutes."""

    id: str = ""
    secret: str = ""
    refresh_token: str = ""
    token_expiry: int = 0
    options: Options = Options()


class TokenResponse(msgspec.Struct):
    token: Token


class ExchangeRequest(msgspec.Struct, omit_defaults=True):
    """A platform access token to exchange for one only ``service`` takes."""

    token: str = ""
    service: str = ""
    options: Options = Options()


class RevokedRequest(msgspec.Struct, omit_defaults=True):
    """Whose revocations: the accounts of namespace ``issuer`` (the call's when empty)."""

    issuer: str = ""


class RevokedResponse(msgspec.Struct):
    """Account id -> the epoch its tokens must carry (``-``: none is valid)."""

    accounts: dict[str, str] = {}


class RevokeRequest(msgspec.Struct, omit_defaults=True):
    """Log out: forget ``refresh_token``."""

    refresh_token: str = ""
    options: Options = Options()


class PublicKeyResponse(msgspec.Struct):
    """The PEM key access tokens are verified with."""

    public_key: str


class ListAccountsRequest(msgspec.Struct, omit_defaults=True):
    options: Options = Options()


class ListAccountsResponse(msgspec.Struct):
    accounts: list[Account] = []


class DeleteAccountRequest(msgspec.Struct, omit_defaults=True):
    id: str = ""
    options: Options = Options()


class ChangeSecretRequest(msgspec.Struct, omit_defaults=True):
    id: str = ""
    old_secret: str = ""
    new_secret: str = ""
    options: Options = Options()


class ResourceMessage(msgspec.Struct):
    type: str = ""
    name: str = ""
    endpoint: str = ""


class RuleMessage(msgspec.Struct):
    """A rule on the wire; every field is written out (public rules have scope ``""``)."""

    id: str = ""
    scope: str = ""
    resource: ResourceMessage | None = None
    access: str | int = ""
    priority: int = 0


class CreateRuleRequest(msgspec.Struct, omit_defaults=True):
    rule: RuleMessage | None = None
    options: Options = Options()


class DeleteRuleRequest(msgspec.Struct, omit_defaults=True):
    id: str = ""
    options: Options = Options()


class ListRulesRequest(msgspec.Struct, omit_defaults=True):
    options: Options = Options()


class ListRulesResponse(msgspec.Struct):
    rules: list[RuleMessage] = []


class WatchRulesRequest(msgspec.Struct, omit_defaults=True):
    """``options.namespace`` ``*`` watches every namespace (platform admins only)."""

    options: Options = Options()


class WatchRulesResponse(msgspec.Struct):
    """The rules of ``namespace`` changed (``*``: reload every namespace)."""

    namespace: str


class EmptyResponse(msgspec.Struct):
    pass


_ACCESS: dict[str | int, Access] = {
    "granted": "granted",
    "denied": "denied",
    1: "granted",
    2: "denied",
}


def to_message(rule: Rule) -> RuleMessage:
    """A rule as it travels."""
    r = rule.resource
    return RuleMessage(
        id=rule.id,
        scope=rule.scope,
        resource=ResourceMessage(r.type, r.name, r.endpoint),
        access=rule.access.upper(),
        priority=rule.priority,
    )


def from_message(message: RuleMessage | None, error_id: str = "auth.Rules.Create") -> Rule:
    """A rule as received; Micro's 400s (``Rule missing``, ``Resource missing``,
    ``Access missing``) when a part is absent."""
    if message is None:
        raise errors.BadRequest(error_id, "Rule missing")
    if message.resource is None:
        raise errors.BadRequest(error_id, "Resource missing")
    access = _ACCESS.get(
        message.access.lower() if isinstance(message.access, str) else message.access
    )
    if access is None:
        raise errors.BadRequest(error_id, "Access missing")
    r = message.resource
    return Rule(
        id=message.id,
        resource=Resource(r.type, r.name, r.endpoint),
        scope=message.scope,
        access=access,
        priority=message.priority,
    )
