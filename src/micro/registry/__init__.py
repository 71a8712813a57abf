"""The registry block: service discovery, partitioned by namespace (domain).

Implementations, picked by ``MICRO_REGISTRY``: ``memory`` (inside ``micro server``) and
``rpc`` (the client of the ``registry`` service, what user services get).
"""

from micro.registry.base import (
    DEFAULT_DOMAIN,
    WILDCARD_DOMAIN,
    Endpoint,
    Node,
    Registry,
    Result,
    Service,
    Watcher,
)

__all__ = [
    "DEFAULT_DOMAIN",
    "WILDCARD_DOMAIN",
    "Endpoint",
    "Node",
    "Registry",
    "Result",
    "Service",
    "Watcher",
]
