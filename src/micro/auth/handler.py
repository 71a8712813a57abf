"""Exposes any :class:`~micro.auth.base.Auth` as the ``auth`` RPC service.

Three handlers, hosted together under the service name ``auth``::

    server.add("auth", [ep for h in handlers(backend) for ep in endpoints_of(h)])

Who may do what (Micro's table; checks by :mod:`micro.auth.access`):

==========================================  ==========================================
``Auth.Token``, ``Inspect``, ``PublicKey``  anyone (``Revoke`` and ``Exchange`` too:
                                             they need the token)
``Accounts.Revoked``                         any account
``Accounts.List``, ``Rules.List``, ``Watch``  any account of the namespace
``Auth.Generate``, ``Accounts.Delete``,      an admin of the namespace
``Rules.Create``, ``Rules.Delete``
``Accounts.ChangeSecret``                    an admin, or the account itself with its
                                             old secret
==========================================  ==========================================

Admins are users: platform admins (``micro`` users with scope ``admin``) may act in every
namespace, a namespace's admins in theirs; a service account never administers anything.
Nobody may delete their own account. Each call acts in one namespace, the one its door
checked (:func:`micro.auth.access.namespace`). Login attempts are throttled by the
address they came from (``micro-remote-address``, which the server sets).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from micro import errors
from micro.auth import access
from micro.auth._watch import ALL_NAMESPACES
from micro.auth.base import Auth as AuthBackend
from micro.auth.proto import (
    ChangeSecretRequest,
    CreateRuleRequest,
    DeleteAccountRequest,
    DeleteRuleRequest,
    EmptyResponse,
    ExchangeRequest,
    GenerateRequest,
    GenerateResponse,
    InspectRequest,
    InspectResponse,
    ListAccountsRequest,
    ListAccountsResponse,
    ListRulesRequest,
    ListRulesResponse,
    Options,
    PublicKeyResponse,
    RevokedRequest,
    RevokedResponse,
    RevokeRequest,
    TokenRequest,
    TokenResponse,
    WatchRulesRequest,
    WatchRulesResponse,
    from_message,
    to_message,
)
from micro.rpc import context
from micro.rpc.server import REMOTE_ADDRESS
from micro.wire.transport import parse_address

__all__ = ["Accounts", "Auth", "Rules", "handlers"]


def _namespace(options: Options, where: str) -> str:
    return access.namespace(options.namespace, where)


def _client() -> str:
    """The host the call came from, as the server saw it (never what a caller said): its
    port changes with every connection, so throttling keys on the host alone."""
    address = context.metadata().get(REMOTE_ADDRESS, "")
    try:
        return parse_address(address).host or address
    except ValueError:
        return address


class Auth:
    """The ``Auth`` handler: ``Generate``, ``Inspect``, ``Token``, ``Revoke``, ``PublicKey``."""

    def __init__(self, backend: AuthBackend) -> None:
        self._backend = backend

    async def generate(self, req: GenerateRequest) -> GenerateResponse:
        """Create an account (admins of the namespace); the answer holds its secret."""
        namespace = _namespace(req.options, "auth.Auth.Generate")
        access.authorize_admin(namespace)
        account = await self._backend.generate(
            req.id,
            secret=req.secret,
            name=req.name,
            type=req.type or "user",
            scopes=req.scopes,
            metadata=req.metadata,
            namespace=namespace,
        )
        return GenerateResponse(account)

    async def inspect(self, req: InspectRequest) -> InspectResponse:
        """The account an access token was issued to; 401 when it is not valid."""
        return InspectResponse(await self._backend.inspect(req.token))

    async def token(self, req: TokenRequest) -> TokenResponse:
        """Log in with id (or name) and secret, or refresh with a refresh token."""
        token = await self._backend.token(
            id=req.id,
            secret=req.secret,
            refresh_token=req.refresh_token,
            expiry=req.token_expiry,
            namespace=_namespace(req.options, "auth.Auth.Token"),
            client=_client(),
        )
        return TokenResponse(token)

    async def exchange(self, req: ExchangeRequest) -> TokenResponse:
        """A token for calling one service of the call's namespace as the account of
        ``req.token``: what a client sends a service instead of its own token."""
        token = await self._backend.exchange(
            req.token,
            service=req.service,
            namespace=_namespace(req.options, "auth.Auth.Exchange"),
        )
        return TokenResponse(token)

    async def revoke(self, req: RevokeRequest) -> EmptyResponse:
        """Log out: forget a refresh token (unknown is fine)."""
        namespace = _namespace(req.options, "auth.Auth.Revoke")
        await self._backend.revoke(req.refresh_token, namespace=namespace)
        return EmptyResponse()

    async def public_key(self) -> PublicKeyResponse:
        """The PEM key that verifies access tokens."""
        return PublicKeyResponse(await self._backend.public_key())


class Accounts:
    """The ``Accounts`` handler: ``List``, ``Delete``, ``ChangeSecret``."""

    def __init__(self, backend: AuthBackend) -> None:
        self._backend = backend

    async def list(self, req: ListAccountsRequest) -> ListAccountsResponse:
        """The namespace's accounts, without secrets."""
        namespace = _namespace(req.options, "auth.Accounts.List")
        access.authorize(namespace)
        return ListAccountsResponse(await self._backend.accounts(namespace=namespace))

    async def revoked(self, req: RevokedRequest) -> RevokedResponse:
        """Whose tokens of namespace ``issuer`` are revoked, for the doors of services:
        theirs verify tokens of any namespace that may call them."""
        if access.enforced() and access.caller() is None:
            raise errors.Unauthorized("auth.Accounts.Revoked", "an account is required")
        issuer = req.issuer or access.namespace(where="auth.Accounts.Revoked")
        return RevokedResponse(await self._backend.revoked(namespace=issuer))

    async def delete(self, req: DeleteAccountRequest) -> EmptyResponse:
        """Delete an account, its refresh tokens and its access tokens (admins; never
        one's own)."""
        namespace = _namespace(req.options, "auth.Accounts.Delete")
        account = access.authorize_admin(namespace)
        if account is not None and account.id == req.id and account.issuer == namespace:
            raise errors.BadRequest("auth.Accounts.Delete", "Can't delete your own account")
        await self._backend.delete_account(req.id, namespace=namespace)
        return EmptyResponse()

    async def change_secret(self, req: ChangeSecretRequest) -> EmptyResponse:
        """Set a new secret: admins may skip the old one; an account may change its own
        with it. Every refresh token of the account is revoked."""
        namespace = _namespace(req.options, "auth.Accounts.ChangeSecret")
        account = access.authorize(namespace)
        if account is not None and not access.is_admin(account, namespace):
            if account.id != req.id:
                raise errors.Forbidden("auth.Accounts.ChangeSecret", "admin access required")
            if not req.old_secret:
                raise errors.BadRequest("auth.Accounts.ChangeSecret", "Old secret missing")
        await self._backend.change_secret(
            req.id,
            new_secret=req.new_secret,
            old_secret=req.old_secret,
            namespace=namespace,
            client=_client(),
        )
        return EmptyResponse()


class Rules:
    """The ``Rules`` handler: ``Create``, ``Delete``, ``List``, ``Watch``."""

    def __init__(self, backend: AuthBackend) -> None:
        self._backend = backend

    async def create(self, req: CreateRuleRequest) -> EmptyResponse:
        """Add a rule (admins); 409 when its id exists."""
        namespace = _namespace(req.options, "auth.Rules.Create")
        access.authorize_admin(namespace)
        await self._backend.grant(from_message(req.rule), namespace=namespace)
        return EmptyResponse()

    async def delete(self, req: DeleteRuleRequest) -> EmptyResponse:
        """Remove a rule (admins); 404 when it does not exist."""
        namespace = _namespace(req.options, "auth.Rules.Delete")
        access.authorize_admin(namespace)
        if not req.id:
            raise errors.BadRequest("auth.Rules.Delete", "ID missing")
        await self._backend.revoke_rule(req.id, namespace=namespace)
        return EmptyResponse()

    async def list(self, req: ListRulesRequest) -> ListRulesResponse:
        """The namespace's rules (the public default until it has its own)."""
        namespace = _namespace(req.options, "auth.Rules.List")
        access.authorize(namespace)
        rules = await self._backend.rules(namespace=namespace)
        return ListRulesResponse([to_message(rule) for rule in rules])

    async def watch(self, req: WatchRulesRequest) -> AsyncIterator[WatchRulesResponse]:
        """``{"namespace": ns}`` at once (reload now), then whenever its rules change;
        namespace ``*`` follows every namespace (platform admins)."""
        if req.options.namespace == ALL_NAMESPACES:  # all of them: no one namespace to match
            namespace = ALL_NAMESPACES
        else:
            namespace = _namespace(req.options, "auth.Rules.Watch")
        if namespace != ALL_NAMESPACES:
            access.authorize(namespace)
        elif access.enforced():
            account = access.authorize("micro")
            if account is None or not account.is_platform_admin:
                raise errors.Forbidden("auth.Rules.Watch", "admin access required")
        watcher = self._backend.watch_rules(None if namespace == ALL_NAMESPACES else namespace)
        try:
            async for changed in watcher:
                yield WatchRulesResponse(changed)
        finally:
            await watcher.stop()


def handlers(backend: AuthBackend) -> list[object]:
    """The three handlers of the ``auth`` service over ``backend``."""
    return [Auth(backend), Accounts(backend), Rules(backend)]
