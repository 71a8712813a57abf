"""Routing: one cache of the registry per process and the router on top of it (round
robin, breakers, retries by policy), used by the client, the proxy, the gateway and the
gRPC edge alike.

See :mod:`micro.routing.table` (what is cached, and what is served when the registry is
away), :mod:`micro.routing.router` (how a call picks a node and is retried) and
:mod:`micro.routing.policy` (the ``resilience`` config).
"""

from micro.routing.breaker import CircuitOpen
from micro.routing.budget import RetryBudget
from micro.routing.policy import Policies, Policy
from micro.routing.router import Router
from micro.routing.table import CORE_SERVICES, IDEMPOTENT, EndpointInfo, Route, RouteTable

__all__ = [
    "CORE_SERVICES",
    "IDEMPOTENT",
    "CircuitOpen",
    "EndpointInfo",
    "Policies",
    "Policy",
    "RetryBudget",
    "Route",
    "RouteTable",
    "Router",
]
