"""The registry interface: where services say where they are and what they answer.

A service registers one record per version with its nodes (address + metadata) and
endpoints (name + JSON Schemas of request and response). Registrations carry a TTL and
are refreshed on a timer, so a node that dies without deregistering disappears within
its TTL. Everything is partitioned by *domain*, which is the namespace.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Final, Literal

import msgspec

from micro import errors
from micro.watch import Subscription

__all__ = [
    "DEFAULT_DOMAIN",
    "WILDCARD_DOMAIN",
    "Endpoint",
    "Node",
    "Registry",
    "Result",
    "Service",
    "Watcher",
    "check_registration",
    "check_service",
]

DEFAULT_DOMAIN: Final = "micro"
WILDCARD_DOMAIN: Final = "*"
"""Lists, gets and watches across every domain (for the platform's own use)."""


class Node(msgspec.Struct, omit_defaults=True):
    """One running instance of a service."""

    id: str
    address: str
    metadata: dict[str, str] = {}


class Endpoint(msgspec.Struct, omit_defaults=True):
    """One endpoint, with JSON Schemas of one request and one response message."""

    name: str
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    metadata: dict[str, str] = {}


class Service(msgspec.Struct, omit_defaults=True):
    """A service version: its endpoints and the nodes that serve it."""

    name: str
    version: str = "latest"
    metadata: dict[str, str] = {}
    endpoints: list[Endpoint] = []
    nodes: list[Node] = []


Action = Literal["create", "update", "delete"]


class Result(msgspec.Struct):
    """A change seen by a watcher: the service as it is after the change (before, for delete)."""

    action: Action
    service: Service
    timestamp: int = 0
    """Unix seconds."""


class Watcher(Subscription[Result]):
    """An async iterator of :class:`Result` that must be stopped when no longer read.

    Changes are seen from the moment the watcher is entered (``async with``) or first read.
    """

    @abstractmethod
    async def next(self) -> Result:
        """The next change; raises ``StopAsyncIteration`` once stopped."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop watching; a pending :meth:`next` ends."""


class Registry(ABC):
    """Service discovery. Implementations: ``memory`` and the ``rpc`` client (and etcd later)."""

    name: ClassVar[str]

    @abstractmethod
    async def register(
        self, service: Service, *, ttl: float | None = None, domain: str = DEFAULT_DOMAIN
    ) -> None:
        """Add or refresh ``service``'s nodes; each lives ``ttl`` seconds unless refreshed.

        The service's metadata and endpoints replace those stored for that version.
        Registering needs at least one node; a ``ttl`` <= 0 is an error.
        """

    @abstractmethod
    async def deregister(self, service: Service, *, domain: str = DEFAULT_DOMAIN) -> None:
        """Remove the nodes listed in ``service``; the version goes with its last node.

        Deregistering something not registered is not an error.
        """

    @abstractmethod
    async def get_service(self, name: str, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        """Every version of ``name`` that has live nodes, with those nodes.

        Raises :class:`micro.errors.NotFound` when there is none.
        """

    @abstractmethod
    async def list_services(self, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        """Every service version with live nodes in ``domain``, sorted by name then version;
        ``[]`` when there is none."""

    @abstractmethod
    def watch(self, *, service: str | None = None, domain: str = DEFAULT_DOMAIN) -> Watcher:
        """Changes from now on, to one service or all of a domain (``*`` for every domain)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most implementations hold nothing
        """Release what the implementation holds."""


def check_service(service: Service, domain: str) -> None:
    """What every implementation refuses to register or deregister: a service without a
    name, or the wildcard (or empty) domain."""
    if not service.name:
        raise errors.BadRequest("registry.Registry", "service name is empty")
    if not domain or domain == WILDCARD_DOMAIN:
        raise errors.BadRequest("registry.Registry", f"cannot register in domain {domain!r}")


def check_registration(service: Service, ttl: float | None, domain: str) -> None:
    """:func:`check_service`, and a registration needs a node and a positive TTL (if any)."""
    check_service(service, domain)
    if not service.nodes:
        raise errors.BadRequest("registry.Registry.Register", "a service needs at least one node")
    if ttl is not None and not ttl > 0:  # NaN too
        raise errors.BadRequest("registry.Registry.Register", "ttl must be positive")
