"""Exposes any :class:`Registry` as the ``registry`` RPC service (``registry.Registry``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from micro.auth import access
from micro.registry.base import DEFAULT_DOMAIN, WILDCARD_DOMAIN, Result, Service
from micro.registry.base import Registry as RegistryBackend
from micro.registry.proto import (
    EmptyResponse,
    GetRequest,
    GetResponse,
    ListRequest,
    ListResponse,
    Options,
    RegisterRequest,
    WatchRequest,
)
from micro.rpc import context

__all__ = ["Registry"]


def _domain(options: Options, *, write: bool = False) -> str:
    """The domain acted on. Reading ``micro`` (the platform's services) is public; reading
    another needs an account of it; registering needs an admin of it (Micro's rules)."""
    domain = options.domain or context.namespace()
    if write:
        access.authorize_admin(domain)
    elif domain == WILDCARD_DOMAIN:
        access.authorize_admin("micro")
    elif domain != DEFAULT_DOMAIN:
        access.authorize(domain)
    return domain


def _service(req: RegisterRequest) -> Service:
    return Service(req.name, req.version, req.metadata, req.endpoints, req.nodes)


class Registry:
    """The ``Registry`` handler: endpoints ``Registry.GetService``, ``Register``, ... ."""

    def __init__(self, backend: RegistryBackend) -> None:
        self._backend = backend

    async def get_service(self, req: GetRequest) -> GetResponse:
        """Every version of a service with its nodes; 404 when it has none."""
        return GetResponse(
            await self._backend.get_service(req.service, domain=_domain(req.options))
        )

    async def register(self, req: RegisterRequest) -> EmptyResponse:
        """Register or refresh a service's nodes for ``options.ttl`` seconds."""
        ttl = req.options.ttl or None
        await self._backend.register(
            _service(req), ttl=ttl, domain=_domain(req.options, write=True)
        )
        return EmptyResponse()

    async def deregister(self, req: RegisterRequest) -> EmptyResponse:
        """Remove the listed nodes."""
        await self._backend.deregister(_service(req), domain=_domain(req.options, write=True))
        return EmptyResponse()

    async def list_services(self, req: ListRequest) -> ListResponse:
        """Every service of the domain."""
        return ListResponse(await self._backend.list_services(domain=_domain(req.options)))

    async def watch(self, req: WatchRequest) -> AsyncIterator[Result]:
        """Stream changes until the caller cancels."""
        watcher = self._backend.watch(service=req.service or None, domain=_domain(req.options))
        try:
            async for result in watcher:
                yield result
        finally:
            await watcher.stop()
