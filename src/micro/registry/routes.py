"""The edges' view of the registry: which services a namespace has and what their
endpoints are, cached and kept fresh by the registry's watch, so a request at the HTTP
gateway or the gRPC edge costs no registry round trip. The server keeps one for both.

An unknown service is remembered for a moment too (a burst of requests for it makes one
lookup), and a registration clears that at once. Callers name anything, so what they name
is kept apart and bounded by bytes (the names' text, which can be long): past its budget
that part starts over rather than grow, and the services that exist stay cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from micro import errors
from micro._bounded import BoundedDict
from micro.registry.base import DEFAULT_DOMAIN, WILDCARD_DOMAIN, Registry, Service
from micro.rpc.client import CORE_SERVICES

__all__ = ["EndpointInfo", "Route", "Routes"]

log = logging.getLogger("micro.registry")

_TTL: Final = 60.0
"""How long an entry lives if the watch missed its change (the watch is what keeps it fresh)."""

_MISSING_TTL: Final = 1.0

_MISSING_BYTES: Final = 1024 * 1024
"""What the names of unknown services remembered may take."""


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


def _key(service: str, namespace: str) -> tuple[str, str]:
    """Where a service is looked up and cached: the platform's own services are the
    server's, registered in its namespace, never looked up where a tenant could have
    registered the name (nor cached once per namespace a caller names)."""
    return (DEFAULT_DOMAIN if service in CORE_SERVICES else namespace), service


class Routes:
    """Cached lookups of services by (namespace, name)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, str], tuple[Route, float]] = {}
        """Services that exist (as many as the registry has)."""
        self._missing: BoundedDict[tuple[str, str], float] = BoundedDict(_MISSING_BYTES)
        """Names callers asked for that the registry lacked, until when they are known to."""
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
                        self._missing.clear()  # (a change names no namespace)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the registry went away: retry, serve from TTLs
                log.warning("routes: registry watch failed (%s); retrying", exc)
            await asyncio.sleep(1.0)

    def clear(self) -> None:
        """Forget everything cached."""
        self._cache.clear()
        self._missing.clear()
        self.generation += 1

    async def stop(self) -> None:
        """Stop following the registry."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    def cached(self, service: str, namespace: str) -> Route | None:
        """The route if cached and fresh (no await: the hot path)."""
        entry = self._cache.get(_key(service, namespace))
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        return None

    async def lookup(self, service: str, namespace: str) -> Route:
        """The service's route; 404 when the namespace has no such service."""
        key = _key(service, namespace)
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is not None and entry[1] > now:
            return entry[0]
        missing_until = self._missing.get(key)
        if missing_until is None or missing_until <= now:
            try:
                versions = await self.registry.get_service(service, domain=key[0])
            except errors.NotFound:
                versions = []
            if versions:
                route = _route(service, versions)
                self._cache[key] = (route, now + _TTL)
                self._missing.pop(key, None)
                return route
            self._cache.pop(key, None)
            self._missing.set(key, now + _MISSING_TTL)
        raise errors.NotFound("micro.api", f"service {service} not found")
