"""Request and response types of the ``network.Network`` RPC service (Micro's shapes).

A route says how to reach one node of one service: Micro's ``Route{service, address,
gateway, network, router, link, metric, metadata}``. On a single server every route is
direct (no gateway), over the ``local`` link, at metric 1, in the network named after the
namespace the service registered in.
"""

from __future__ import annotations

import msgspec

from micro.registry.base import Node

__all__ = [
    "Node",
    "NodesRequest",
    "NodesResponse",
    "Query",
    "Route",
    "RoutesRequest",
    "RoutesResponse",
    "ServicesRequest",
    "ServicesResponse",
]


class Query(msgspec.Struct, omit_defaults=True, frozen=True):
    """Which routes to list: every field given must match ("" matches anything)."""

    service: str = ""
    address: str = ""
    gateway: str = ""
    router: str = ""
    network: str = ""


class Route(msgspec.Struct, omit_defaults=True):
    """One way to reach one node of a service."""

    service: str
    address: str
    gateway: str = ""
    network: str = ""
    router: str = ""
    link: str = ""
    metric: int = 0
    metadata: dict[str, str] = {}


class ServicesRequest(msgspec.Struct, omit_defaults=True):
    pass


class ServicesResponse(msgspec.Struct):
    services: list[str] = []


class NodesRequest(msgspec.Struct, omit_defaults=True):
    depth: int = 0
    """Accepted for Micro's shape; a single server has no peers to go deeper into."""


class NodesResponse(msgspec.Struct):
    nodes: list[Node] = []


class RoutesRequest(msgspec.Struct, omit_defaults=True):
    query: Query = Query()


class RoutesResponse(msgspec.Struct):
    routes: list[Route] = []
