"""Exposes any :class:`Registry` as the ``registry`` RPC service (``registry.Registry``).

Who may do what (Micro's rules, and ours on top):

- reading domain ``micro`` (the platform's services) is public; reading another domain
  needs an account of it; watching every domain (``*``) a platform admin;
- registering needs an admin of the domain, or the service account of that very service
  (a service registers itself and nothing else);
- the names of the platform's own services are reserved in every domain: the server
  registers its core services itself, in process, and nobody may register one over RPC
  (a tenant's ``auth`` would otherwise be sent its users' passwords);
- each domain holds at most ``max_services`` services, each version at most
  :data:`MAX_NODES` nodes, and a registration is at most :data:`MAX_RECORD` bytes, so no
  tenant can make the registry (or a listing of it) grow without bound.

Each call acts in one domain, the one its door checked (:func:`micro.auth.access.namespace`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import msgspec

from micro import errors
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
from micro.rpc.client import CORE_SERVICES

__all__ = ["MAX_NODES", "MAX_RECORD", "MAX_SERVICES", "Registry"]

MAX_SERVICES: Final = 1000
"""Services one domain may hold, unless the server says otherwise."""
MAX_NODES: Final = 256
"""Nodes one version of a service may have."""
MAX_RECORD: Final = 256 * 1024
"""The largest registration, encoded (endpoint schemas included)."""

_TOO_MANY: Final = 429
_encode = msgspec.msgpack.Encoder().encode


def _domain(options: Options, where: str) -> str:
    """The domain read. Reading ``micro`` (the platform's services) is public; reading
    another needs an account of it (Micro's rules)."""
    if options.domain == WILDCARD_DOMAIN:
        account = access.authorize("micro")
        if account is not None and not account.is_platform_admin:
            raise errors.Forbidden(where, "admin access required")
        return WILDCARD_DOMAIN
    domain = access.namespace(options.domain, where)
    if domain != DEFAULT_DOMAIN:
        access.authorize(domain)
    return domain


def _service(req: RegisterRequest) -> Service:
    return Service(req.name, req.version, req.metadata, req.endpoints, req.nodes)


class Registry:
    """The ``Registry`` handler: endpoints ``Registry.GetService``, ``Register``, ... ."""

    def __init__(self, backend: RegistryBackend, *, max_services: int = MAX_SERVICES) -> None:
        self._backend = backend
        self._max_services = max_services

    async def get_service(self, req: GetRequest) -> GetResponse:
        """Every version of a service with its nodes; 404 when it has none."""
        domain = _domain(req.options, "registry.Registry.GetService")
        return GetResponse(await self._backend.get_service(req.service, domain=domain))

    async def register(self, req: RegisterRequest) -> EmptyResponse:
        """Register or refresh a service's nodes for ``options.ttl`` seconds."""
        where = "registry.Registry.Register"
        domain = self._writable(req, where)
        service = _service(req)
        if len(_encode(service)) > MAX_RECORD:
            raise errors.PayloadTooLarge(
                where, f"the registration of {req.name} is over {MAX_RECORD >> 10} KiB"
            )
        await self._check_room(service, domain, where)
        await self._backend.register(service, ttl=req.options.ttl or None, domain=domain)
        return EmptyResponse()

    async def deregister(self, req: RegisterRequest) -> EmptyResponse:
        """Remove the listed nodes."""
        domain = self._writable(req, "registry.Registry.Deregister")
        await self._backend.deregister(_service(req), domain=domain)
        return EmptyResponse()

    async def list_services(self, req: ListRequest) -> ListResponse:
        """Every service of the domain."""
        domain = _domain(req.options, "registry.Registry.ListServices")
        return ListResponse(await self._backend.list_services(domain=domain))

    async def watch(self, req: WatchRequest) -> AsyncIterator[Result]:
        """Stream changes until the caller cancels."""
        domain = _domain(req.options, "registry.Registry.Watch")
        watcher = self._backend.watch(service=req.service or None, domain=domain)
        try:
            async for result in watcher:
                yield result
        finally:
            await watcher.stop()

    # -- checks ---------------------------------------------------------------------------

    def _writable(self, req: RegisterRequest, where: str) -> str:
        """The domain a (de)registration acts in, once the caller may write this service
        there: an admin of the domain, or the service itself; never a reserved name."""
        if req.name in CORE_SERVICES:
            raise errors.Forbidden(
                where,
                f"{req.name!r} is the name of a platform service: it is reserved in every "
                "namespace",
            )
        domain = access.namespace(req.options.domain, where)
        access.authorize_service(domain, req.name)
        return domain

    async def _check_room(self, service: Service, domain: str, where: str) -> None:
        """Refuse what would pass a quota: a new service past the domain's, or nodes past
        the version's."""
        try:
            versions = await self._backend.get_service(service.name, domain=domain)
        except errors.NotFound:
            listed = await self._backend.list_services(domain=domain)
            if len({s.name for s in listed}) >= self._max_services:
                raise errors.new(
                    where,
                    f"namespace {domain} has {self._max_services} services, the most it may "
                    "have (MICRO_REGISTRY_MAX_SERVICES)",
                    _TOO_MANY,
                ) from None
            versions = []
        nodes = {n.id for v in versions if v.version == service.version for n in v.nodes}
        nodes |= {n.id for n in service.nodes}
        if len(nodes) > MAX_NODES:
            raise errors.new(
                where,
                f"{service.name} ({service.version}) would have {len(nodes)} nodes, more "
                f"than the {MAX_NODES} a version may have",
                _TOO_MANY,
            )
