"""The registry as seen by services and the CLI: the ``registry`` RPC service behind the proxy."""

from __future__ import annotations

from typing import Any, Self

from micro.registry.base import (
    DEFAULT_DOMAIN,
    WILDCARD_DOMAIN,
    Registry,
    Result,
    Service,
    Watcher,
)
from micro.registry.proto import GetResponse, ListResponse, Options, RegisterRequest
from micro.rpc.client import Client, ClientStream

__all__ = ["RPCRegistry"]

_SERVICE = "registry"


def _in(domain: str) -> dict[str, str] | None:
    """A call acts in one namespace, its domain (the one the server's door checks); the
    wildcard domain is not one, so it leaves the caller's own in force."""
    return None if domain == WILDCARD_DOMAIN else {"micro-namespace": domain}


class _RPCWatcher(Watcher):
    def __init__(self, client: Client, request: dict[str, Any]) -> None:
        self._client = client
        self._request = request
        self._stream: ClientStream[Result] | None = None
        self._stopped = False

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def _open(self) -> ClientStream[Result]:
        if self._stream is None:
            self._stream = await self._client.stream(
                _SERVICE,
                "Registry.Watch",
                self._request,
                response_type=Result,
                metadata=_in(self._request["options"]["domain"]),
            )
        return self._stream

    async def next(self) -> Result:
        if self._stopped:
            raise StopAsyncIteration
        stream = await self._open()
        result: Result = await stream.recv()
        return result

    async def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            await self._stream.close()


def _request(service: Service, options: Options) -> RegisterRequest:
    return RegisterRequest(
        service.name,
        service.version,
        service.metadata,
        service.endpoints,
        service.nodes,
        options=options,
    )


class RPCRegistry(Registry):
    """Calls the ``registry`` service; what user services and the CLI get by default."""

    name = "rpc"

    def __init__(self, client: Client) -> None:
        self._client = client

    async def register(
        self, service: Service, *, ttl: float | None = None, domain: str = DEFAULT_DOMAIN
    ) -> None:
        req = _request(service, Options(ttl=ttl or 0, domain=domain))
        await self._client.call(_SERVICE, "Registry.Register", req, metadata=_in(domain))

    async def deregister(self, service: Service, *, domain: str = DEFAULT_DOMAIN) -> None:
        req = _request(service, Options(domain=domain))
        await self._client.call(_SERVICE, "Registry.Deregister", req, metadata=_in(domain))

    async def get_service(self, name: str, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        req = {"service": name, "options": {"domain": domain}}
        rsp = await self._client.call(
            _SERVICE, "Registry.GetService", req, response_type=GetResponse, metadata=_in(domain)
        )
        services: list[Service] = rsp.services
        return services

    async def list_services(self, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        req = {"options": {"domain": domain}}
        rsp = await self._client.call(
            _SERVICE,
            "Registry.ListServices",
            req,
            response_type=ListResponse,
            metadata=_in(domain),
        )
        services: list[Service] = rsp.services
        return services

    def watch(self, *, service: str | None = None, domain: str = DEFAULT_DOMAIN) -> Watcher:
        return _RPCWatcher(self._client, {"service": service or "", "options": {"domain": domain}})
