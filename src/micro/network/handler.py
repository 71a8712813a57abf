"""Exposes a :class:`~micro.network.local.LocalNetwork` as the ``network`` RPC service
(``network.Network``).

Every call acts in the caller's namespace and needs an account of it (or a platform
admin): a caller never sees another namespace's services. The ``micro`` namespace's
own list includes the platform's core services, which register there.
"""

from __future__ import annotations

from micro.auth import access
from micro.network.local import LocalNetwork
from micro.network.proto import (
    NodesRequest,
    NodesResponse,
    RoutesRequest,
    RoutesResponse,
    ServicesRequest,
    ServicesResponse,
)
from micro.rpc import context

__all__ = ["Network"]


def _namespace() -> str:
    namespace = context.namespace()
    access.authorize(namespace)
    return namespace


class Network:
    """The ``Network`` handler: ``Network.Services``, ``Network.Nodes``, ``Network.Routes``."""

    def __init__(self, backend: LocalNetwork) -> None:
        self._backend = backend

    async def services(self, req: ServicesRequest) -> ServicesResponse:
        """Names of the services of the caller's namespace, sorted."""
        return ServicesResponse(await self._backend.services(_namespace()))

    async def nodes(self, req: NodesRequest) -> NodesResponse:
        """The nodes of those services: id, address, metadata."""
        return NodesResponse(await self._backend.nodes(_namespace()))

    async def routes(self, req: RoutesRequest) -> RoutesResponse:
        """A route per node of those services, filtered by ``query``."""
        return RoutesResponse(await self._backend.routes(_namespace(), req.query))
