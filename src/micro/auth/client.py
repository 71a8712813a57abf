"""Auth as services and the CLI see it: the ``auth`` RPC service behind the proxy.

The caller's own token travels in the client's metadata (``authorization``), set by
whoever made the client; admin operations need an admin's. Each call is made in the
namespace it acts on (``micro-namespace``), the one the server's door checks.
"""

from __future__ import annotations

import builtins
from typing import Self

from micro.auth._watch import ALL_NAMESPACES
from micro.auth.base import Account, Auth, Rule, RulesWatcher, Token
from micro.auth.proto import (
    ChangeSecretRequest,
    CreateRuleRequest,
    DeleteAccountRequest,
    DeleteRuleRequest,
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
from micro.rpc.client import Client, ClientStream

__all__ = ["RPCAuth"]

_SERVICE = "auth"


def _in(namespace: str) -> dict[str, str]:
    return {"micro-namespace": namespace}


class _RPCRulesWatcher(RulesWatcher):
    def __init__(self, client: Client, request: WatchRulesRequest) -> None:
        self._client = client
        self._request = request
        namespace = request.options.namespace
        self._metadata = None if namespace == ALL_NAMESPACES else _in(namespace)
        self._stream: ClientStream[WatchRulesResponse] | None = None
        self._stopped = False

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def _open(self) -> ClientStream[WatchRulesResponse]:
        if self._stream is None:
            self._stream = await self._client.stream(
                _SERVICE,
                "Rules.Watch",
                self._request,
                response_type=WatchRulesResponse,
                metadata=self._metadata,
            )
        return self._stream

    async def next(self) -> str:
        if self._stopped:
            raise StopAsyncIteration
        stream = await self._open()
        try:
            rsp: WatchRulesResponse = await stream.recv()
        except BaseException:
            await self.stop()
            raise
        return rsp.namespace

    async def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            await self._stream.close()


class RPCAuth(Auth):
    """Calls the ``auth`` service."""

    name = "rpc"

    def __init__(self, client: Client) -> None:
        self._client = client

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
        req = GenerateRequest(
            id=id,
            metadata=metadata or {},
            scopes=scopes or [],
            secret=secret,
            type=type,
            options=Options(namespace),
            name=name,
        )
        rsp = await self._client.call(
            _SERVICE, "Auth.Generate", req, response_type=GenerateResponse, metadata=_in(namespace)
        )
        account: Account = rsp.account
        return account

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
        req = TokenRequest(id, secret, refresh_token, int(expiry), Options(namespace))
        rsp = await self._client.call(
            _SERVICE, "Auth.Token", req, response_type=TokenResponse, metadata=_in(namespace)
        )
        token: Token = rsp.token
        return token

    async def exchange(self, token: str, *, service: str, namespace: str) -> Token:
        req = ExchangeRequest(token, service, Options(namespace))
        rsp = await self._client.call(
            _SERVICE, "Auth.Exchange", req, response_type=TokenResponse, metadata=_in(namespace)
        )
        exchanged: Token = rsp.token
        return exchanged

    async def revoked(self, *, namespace: str = "micro") -> dict[str, str]:
        rsp = await self._client.call(
            _SERVICE, "Accounts.Revoked", RevokedRequest(namespace), response_type=RevokedResponse
        )
        accounts: dict[str, str] = rsp.accounts
        return accounts

    async def inspect(self, token: str) -> Account:
        rsp = await self._client.call(
            _SERVICE, "Auth.Inspect", InspectRequest(token), response_type=InspectResponse
        )
        account: Account = rsp.account
        return account

    async def revoke(self, refresh_token: str, *, namespace: str = "micro") -> None:
        await self._client.call(
            _SERVICE,
            "Auth.Revoke",
            RevokeRequest(refresh_token, Options(namespace)),
            metadata=_in(namespace),
        )

    async def public_key(self) -> str:
        rsp = await self._client.call(
            _SERVICE, "Auth.PublicKey", {}, response_type=PublicKeyResponse
        )
        key: str = rsp.public_key
        return key

    async def accounts(self, *, namespace: str = "micro") -> builtins.list[Account]:
        rsp = await self._client.call(
            _SERVICE,
            "Accounts.List",
            ListAccountsRequest(Options(namespace)),
            response_type=ListAccountsResponse,
            metadata=_in(namespace),
        )
        accounts: list[Account] = rsp.accounts
        return accounts

    async def delete_account(self, id: str, *, namespace: str = "micro") -> None:
        await self._client.call(
            _SERVICE,
            "Accounts.Delete",
            DeleteAccountRequest(id, Options(namespace)),
            metadata=_in(namespace),
        )

    async def change_secret(
        self,
        id: str,
        *,
        new_secret: str,
        old_secret: str = "",
        namespace: str = "micro",
        client: str = "",
    ) -> None:
        req = ChangeSecretRequest(id, old_secret, new_secret, Options(namespace))
        await self._client.call(_SERVICE, "Accounts.ChangeSecret", req, metadata=_in(namespace))

    async def grant(self, rule: Rule, *, namespace: str = "micro") -> None:
        req = CreateRuleRequest(to_message(rule), Options(namespace))
        await self._client.call(_SERVICE, "Rules.Create", req, metadata=_in(namespace))

    async def revoke_rule(self, id: str, *, namespace: str = "micro") -> None:
        req = DeleteRuleRequest(id, Options(namespace))
        await self._client.call(_SERVICE, "Rules.Delete", req, metadata=_in(namespace))

    async def rules(self, *, namespace: str = "micro") -> builtins.list[Rule]:
        rsp = await self._client.call(
            _SERVICE,
            "Rules.List",
            ListRulesRequest(Options(namespace)),
            response_type=ListRulesResponse,
            metadata=_in(namespace),
        )
        return [from_message(message, "auth.Rules.List") for message in rsp.rules]

    def watch_rules(self, namespace: str | None = "micro") -> RulesWatcher:
        req = WatchRulesRequest(Options(ALL_NAMESPACES if namespace is None else namespace))
        return _RPCRulesWatcher(self._client, req)
