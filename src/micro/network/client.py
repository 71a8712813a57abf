"""The network as seen by services and the CLI: the ``network`` RPC service behind the proxy."""

from __future__ import annotations

from micro.network.proto import Node, NodesResponse, Query, Route, RoutesResponse, ServicesResponse
from micro.rpc.client import Client

__all__ = ["RPCNetwork"]

_SERVICE = "network"


class RPCNetwork:
    """Calls the ``network`` service; answers are about the client's namespace."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def services(self) -> list[str]:
        """Names of the namespace's services, sorted."""
        rsp = await self._client.call(
            _SERVICE, "Network.Services", {}, response_type=ServicesResponse
        )
        services: list[str] = rsp.services
        return services

    async def nodes(self) -> list[Node]:
        """Every node of the namespace's services, sorted by id."""
        rsp = await self._client.call(_SERVICE, "Network.Nodes", {}, response_type=NodesResponse)
        nodes: list[Node] = rsp.nodes
        return nodes

    async def routes(self, query: Query | None = None) -> list[Route]:
        """Routes to the namespace's service nodes that ``query`` matches."""
        rsp = await self._client.call(
            _SERVICE, "Network.Routes", {"query": query or Query()}, response_type=RoutesResponse
        )
        routes: list[Route] = rsp.routes
        return routes
