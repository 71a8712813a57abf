"""The one cache a process keeps of the registry: (namespace, service) -> its endpoints and
nodes, kept fresh by one registry watch, read by every part of the process that routes a
call (the client, the proxy, the gateway, the gRPC edge).

How fresh an entry is, and what happens when the registry cannot answer:

- While the watch runs, an entry lives :data:`_TTL` seconds (the watch is what keeps it
  right: a change to a service marks its entries for a re-read).
- An entry past its time is still served, at once, while one background read refreshes it
  (stale while revalidating): a call to a known service never waits on the registry.
- When that read fails because the registry is away, the entry stays and is served
  (stale beats none: the service's nodes most likely still run) and is tried again
  :data:`_RETRY` seconds later. Only a registry that answers "no such service" removes it.
- A service never seen before has nothing to serve: its lookup waits on the registry and
  fails with the registry's error. Unknown names callers asked for are remembered for a
  moment (a burst makes one lookup), bounded by bytes, since callers name anything.

The platform's own services (:data:`CORE_SERVICES`) are looked up in
the server's namespace whatever namespace a call names, never where a tenant could
register the name; every other service is looked up in the call's namespace only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from micro import errors
from micro._bounded import BoundedDict
from micro.registry.base import DEFAULT_DOMAIN, WILDCARD_DOMAIN, Registry, Service

__all__ = ["CORE_SERVICES", "IDEMPOTENT", "EndpointInfo", "Restarting", "Route", "RouteTable"]

log = logging.getLogger("micro.routing")

CORE_SERVICES: Final = frozenset(
    {
        "registry",
        "broker",
        "store",
        "config",
        "events",
        "auth",
        "runtime",
        "network",
        "proxy",
        "trace",
    }
)
"""Services the server itself hosts: always reached through the proxy, never looked up
where a tenant could register the name."""

IDEMPOTENT: Final = "idempotent"
"""The endpoint metadata key (value ``"true"``) that says a call may be made twice."""

_TTL: Final = 60.0
"""How long an entry lives if the watch missed its change."""

_RETRY: Final = 5.0
"""How long a stale entry is served before the registry is asked again, while it fails."""

_MISSING_TTL: Final = 1.0

_MISSING_BYTES: Final = 1024 * 1024
"""What the names of unknown services remembered may take."""

_WATCH_RETRY: Final = 1.0


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What the edges need of an endpoint: how it streams, its schemas, its metadata."""

    name: str
    kind: str
    """``unary``, ``server``, ``client`` or ``bidi``."""
    request: dict[str, Any]
    response: dict[str, Any]
    metadata: dict[str, str]

    @property
    def idempotent(self) -> bool:
        """Whether its service said a call may be made twice (so may be retried once sent)."""
        return self.metadata.get(IDEMPOTENT) == "true"


@dataclass(frozen=True, slots=True)
class Route:
    """A service in a namespace: the endpoints of all its versions and all their nodes."""

    service: str
    endpoints: dict[str, EndpointInfo]
    nodes: tuple[str, ...] = ()

    def idempotent(self, endpoint: str) -> bool:
        """Whether ``endpoint`` was declared idempotent (unknown endpoints are not)."""
        info = self.endpoints.get(endpoint)
        return info is not None and info.idempotent


def route_of(name: str, versions: list[Service]) -> Route:
    """The route of a service from its versions as the registry returns them."""
    endpoints: dict[str, EndpointInfo] = {}
    nodes: list[str] = []
    for version in versions:
        for ep in version.endpoints:
            kind = ep.metadata.get("stream_type", "unary") if ep.metadata.get("stream") else "unary"
            endpoints.setdefault(
                ep.name, EndpointInfo(ep.name, kind, ep.request, ep.response, ep.metadata)
            )
        nodes.extend(node.address for node in version.nodes if node.address not in nodes)
    return Route(name, endpoints, tuple(nodes))


def key_of(service: str, namespace: str) -> tuple[str, str]:
    """Where a service is looked up and cached: (namespace, service), the platform's own
    services always in the server's namespace."""
    return (DEFAULT_DOMAIN if service in CORE_SERVICES else namespace), service


class _Entry:
    __slots__ = ("expires", "route")

    def __init__(self, route: Route, expires: float) -> None:
        self.route = route
        self.expires = expires


class Restarting(Protocol):
    """What the server's runtime knows of a service with no node (set as
    :attr:`RouteTable.restarting`; :class:`micro.runtime.restarting.Restarting`)."""

    def expects(self, namespace: str, service: str) -> bool:
        """Whether the runtime runs it (503 at once when it failed)."""
        ...

    async def wait(
        self,
        service: str,
        namespace: str,
        timeout_ms: float,
        select: Callable[[], Awaitable[Route]],
    ) -> Route:
        """``select()`` again until the service is back (within ``timeout_ms``), else 503."""
        ...


class RouteTable:
    """Cached lookups of services by (namespace, name), fresh by one watch of ``domain``
    (``*``: every namespace, what the server watches; a service's process watches its own)."""

    def __init__(self, registry: Registry, *, domain: str = WILDCARD_DOMAIN) -> None:
        self.registry = registry
        self._domain = domain
        self._cache: dict[tuple[str, str], _Entry] = {}
        """Services that exist (as many as the registry has)."""
        self._missing: BoundedDict[tuple[str, str], float] = BoundedDict(_MISSING_BYTES)
        """Names callers asked for that the registry lacked, until when they are known to."""
        self._reading: dict[tuple[str, str], asyncio.Future[Route | None]] = {}
        """Reads in flight, one per key: a burst of calls makes one registry round trip."""
        self._watch: asyncio.Task[None] | None = None
        self._watching = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.generation = 0
        """Bumped on every registry change (for caches built on top, like OpenAPI)."""
        self.restarting: Restarting | None = None
        """Set in a server that runs a runtime: a service it runs that has no node is
        waited for by :meth:`wait_lookup`, not "not found"."""

    @property
    def watching(self) -> bool:
        """Whether the registry watch is running now (else entries are re-read sooner)."""
        return self._watching

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the registry's changes (idempotent; the first lookup starts it too)."""
        if self._watch is None or self._watch.done():
            self._watch = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        """Stop following the registry and any read in flight."""
        tasks = [t for t in (self._watch, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watch = None

    async def _follow(self) -> None:
        failing = False
        while True:
            try:
                async with self.registry.watch(domain=self._domain) as watcher:
                    self._watching = True
                    self.expire()  # whatever changed while not watching is read again
                    if failing:
                        log.info("routing: registry watch resumed")
                        failing = False
                    async for result in watcher:
                        self._changed(result.service.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the registry went away: serve what is known, retry
                if not failing:
                    log.warning("routing: registry watch failed (%s); serving cached routes", exc)
                    failing = True
            self._watching = False
            await asyncio.sleep(_WATCH_RETRY)

    def _changed(self, name: str) -> None:
        self.generation += 1
        now = time.monotonic()
        for key, entry in self._cache.items():
            if key[1] == name:
                entry.expires = 0.0
                self._refresh(key, now)
        self._missing.clear()  # (a change names no namespace)

    def expire(self) -> None:
        """Have every entry read again on its next use (still served until then)."""
        for entry in self._cache.values():
            entry.expires = 0.0
        self._missing.clear()
        self.generation += 1

    def clear(self) -> None:
        """Forget everything cached."""
        self._cache.clear()
        self._missing.clear()
        self.generation += 1

    # -- lookups --------------------------------------------------------------------------

    def cached(self, service: str, namespace: str) -> Route | None:
        """The route if known, fresh or stale (no await: the hot path); a stale one is
        refreshed in the background."""
        key = key_of(service, namespace)
        entry = self._cache.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if entry.expires <= now:
            self._refresh(key, now)
        return entry.route

    async def lookup(self, service: str, namespace: str, *, who: str = "micro.api") -> Route:
        """The service's route; 404 (from ``who``, the door asking) when the namespace has
        no such service, the registry's error when it cannot say and nothing is known of
        the service."""
        route = self.cached(service, namespace)
        if route is not None:
            return route
        key = key_of(service, namespace)
        missing_until = self._missing.get(key)
        if missing_until is None or missing_until <= time.monotonic():
            found = await asyncio.shield(self._read(key))
            if found is not None:
                return found
        raise errors.NotFound(who, f"service {service} not found")

    async def wait_lookup(
        self, service: str, namespace: str, timeout_ms: float, *, who: str = "micro.api"
    ) -> Route:
        """:meth:`lookup` for a call at a door (the proxy, the gateway): a service the
        runtime is (re)starting is waited for up to the call's deadline, then 503 "service
        restarting", never 404 (:attr:`restarting`)."""
        try:
            return await self.lookup(service, namespace, who=who)
        except errors.NotFound:
            restarting = self.restarting
            if restarting is None or not restarting.expects(namespace, service):
                raise

        async def again() -> Route:
            return await self.lookup(service, namespace, who=who)

        return await restarting.wait(service, namespace, timeout_ms, again)

    def _refresh(self, key: tuple[str, str], now: float) -> None:
        """Re-read a stale entry in the background (once at a time)."""
        if self._watch is None:
            self.start()
        entry = self._cache.get(key)
        if entry is not None:
            entry.expires = now + _RETRY  # not again before this read is over (or failed)
        if key not in self._reading:
            task = asyncio.get_running_loop().create_task(self._quiet_read(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _quiet_read(self, key: tuple[str, str]) -> None:
        with contextlib.suppress(errors.MicroError):
            await self._read(key)

    def _read(self, key: tuple[str, str]) -> asyncio.Future[Route | None]:
        reading = self._reading.get(key)
        if reading is None:
            if self._watch is None:
                self.start()
            reading = self._reading[key] = asyncio.ensure_future(self._fetch(key))
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        return reading

    async def _fetch(self, key: tuple[str, str]) -> Route | None:
        """Ask the registry; None when it has no such service."""
        namespace, service = key
        try:
            versions = await self.registry.get_service(service, domain=namespace)
        except errors.NotFound:
            versions = []
        except errors.MicroError as exc:
            entry = self._cache.get(key)
            if entry is None:
                raise
            log.debug("routing: %s/%s served stale: %s", namespace, service, exc.detail)
            entry.expires = time.monotonic() + _RETRY
            return entry.route
        now = time.monotonic()
        if not versions:
            self._cache.pop(key, None)
            self._missing.set(key, now + _MISSING_TTL)
            return None
        route = route_of(service, versions)
        self._cache[key] = _Entry(route, now + (_TTL if self._watching else _RETRY))
        self._missing.pop(key, None)
        return route
