"""The edges' view of the registry: which services a namespace has and what their
endpoints are, cached and kept fresh by the registry's watch, so a request at the HTTP
gateway or the gRPC edge costs no registry round trip. The server keeps one for both.

An unknown service is remembered for a moment too (a burst of requests for it makes one
lookup), and a registration clears that at once. Callers name anything, so the cache is
bounded: past its size it starts over rather than grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from micro import errors
from micro.registry.base import DEFAULT_DOMAIN, WILDCARD_DOMAIN, Registry, Service
from micro.rpc.client import CORE_SERVICES

__all__ = ["EndpointInfo", "Route", "Routes"]

log = logging.getLogger("micro.registry")

_TTL: Final = 60.0
"""How long an entry lives if the watch missed its change (the watch is what keeps it fresh)."""

_MISSING_TTL: Final = 1.0

_MAX_CACHED: Final = 10_000


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What the gateway needs of an endpoint: how it streams and its request schema."""

    name: str
    kind: str
    """``unary``, ``server``, ``client`` or ``bidi``."""
    request: dict[str, Any]
    response: dict[str, Any]
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class Route:
    """A service in a namespace, with the endpoints of all its versions."""

    service: str
    endpoints: dict[str, EndpointInfo]


def _route(name: str, versions: list[Service]) -> Route:
    endpoints: dict[str, EndpointInfo] = {}
    for version in versions:
        for ep in version.endpoints:
            kind = ep.metadata.get("stream_type", "unary") if ep.metadata.get("stream") else "unary"
            endpoints.setdefault(
                ep.name, EndpointInfo(ep.name, kind, ep.request, ep.response, ep.metadata)
            )
    return Route(name, endpoints)


class Routes:
    """Cached lookups of services by (namespace, name)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, str], tuple[Route | None, float]] = {}
        self._watch: asyncio.Task[None] | None = None
        self.generation = 0
        """Bumped on every registry change (for caches built on top, like OpenAPI)."""

    async def start(self) -> None:
        """Follow the registry's changes."""
        self._watch = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            try:
                async with self.registry.watch(domain=WILDCARD_DOMAIN) as watcher:
                    self.clear()  # whatever happened while not watching
                    async for result in watcher:
                        self.generation += 1
                        name = result.service.name
                        for key in [k for k in self._cache if k[1] == name]:
                            del self._cache[key]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the registry went away: retry, serve from TTLs
                log.warning("routes: registry watch failed (%s); retrying", exc)
            await asyncio.sleep(1.0)

    def clear(self) -> None:
        """Forget everything cached."""
        self._cache.clear()
        self.generation += 1

    async def stop(self) -> None:
        """Stop following the registry."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    def cached(self, service: str, namespace: str) -> Route | None:
        """The route if cached and fresh (no await: the hot path)."""
        entry = self._cache.get((namespace, service))
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        return None

    async def lookup(self, service: str, namespace: str) -> Route:
        """The service's route; 404 when the namespace has no such service."""
        key = (namespace, service)
        entry = self._cache.get(key)
        now = time.monotonic()
        if entry is None or entry[1] <= now:
            # The platform's own services are the server's, registered in its namespace:
            # never looked up where a tenant could have registered the name.
            domain = DEFAULT_DOMAIN if service in CORE_SERVICES else namespace
            try:
                versions = await self.registry.get_service(service, domain=domain)
            except errors.NotFound:
                versions = []
            route = _route(service, versions) if versions else None
            entry = (route, now + (_TTL if route is not None else _MISSING_TTL))
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = entry
        if entry[0] is None:
            raise errors.NotFound("micro.api", f"service {service} not found")
        return entry[0]
