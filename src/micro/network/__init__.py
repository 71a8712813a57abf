"""The network: which services, nodes and routes a namespace can reach (reference §2.10).

Routing itself (round robin, breakers, retries) lives in :mod:`micro.routing`, used by
the client and the server's proxy; this block answers questions about it.
"""

from micro.network.client import RPCNetwork
from micro.network.local import LocalNetwork
from micro.network.proto import Node, Query, Route

__all__ = ["LocalNetwork", "Node", "Query", "RPCNetwork", "Route"]
