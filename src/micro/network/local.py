"""The network of one server: its registry, read as services, nodes and routes.

Micro's registry-backed router turns every registry node into a route whose network is
the registry domain (the namespace). This does the same on demand, from the registry
the server hosts, so it is never stale and holds nothing of its own. Peering with other
servers (Micro's tunnel) is not there: every route is direct, over the ``local`` link.
"""

from __future__ import annotations

from micro import errors
from micro.network.proto import Node, Query, Route
from micro.registry.base import Registry, Service

__all__ = ["LocalNetwork"]

LINK = "local"
METRIC = 1


class LocalNetwork:
    """Services, nodes and routes of one namespace, read from ``registry``.

    ``router`` names this server in the routes it hands out (Micro's router id).
    """

    name = "local"

    def __init__(self, registry: Registry, *, router: str = "local") -> None:
        self._registry = registry
        self.router = router

    async def services(self, namespace: str) -> list[str]:
        """Names of the namespace's services, sorted; ``[]`` when there is none."""
        return sorted({svc.name for svc in await self._registry.list_services(domain=namespace)})

    async def nodes(self, namespace: str) -> list[Node]:
        """Every node of every service of the namespace, once each, sorted by id."""
        found: dict[str, Node] = {}
        for svc in await self._versions(namespace, ""):
            for node in svc.nodes:
                found.setdefault(node.id, node)
        return [found[key] for key in sorted(found)]

    async def routes(self, namespace: str, query: Query | None = None) -> list[Route]:
        """One route per node of each service of the namespace that ``query`` matches,
        sorted by service then address. A query for another network matches nothing."""
        query = query or Query()
        if query.network and query.network != namespace:
            return []
        if query.gateway or (query.router and query.router != self.router):
            return []  # every route here is direct, through this router
        routes = [
            Route(
                service=svc.name,
                address=node.address,
                network=namespace,
                router=self.router,
                link=LINK,
                metric=METRIC,
                metadata=node.metadata,
            )
            for svc in await self._versions(namespace, query.service)
            for node in svc.nodes
            if not query.address or node.address == query.address
        ]
        return sorted(routes, key=lambda r: (r.service, r.address))

    async def _versions(self, namespace: str, service: str) -> list[Service]:
        """Every version of ``service`` (of every service when ""), with its nodes (a
        registry need not list nodes, so each service is read on its own)."""
        names = [service] if service else await self.services(namespace)
        found: list[Service] = []
        for name in names:
            try:
                found += await self._registry.get_service(name, domain=namespace)
            except errors.NotFound:
                continue  # gone since it was listed, or never there
        return found

    async def close(self) -> None:
        """Nothing to release: the registry belongs to the server."""
