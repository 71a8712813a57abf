"""The in-memory registry: the embedded default, living inside ``micro server``.

Nodes expire at their TTL; a reaper task removes them and tells watchers, so a node
killed with SIGKILL leaves every listing (and the gateway's route cache) within its TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from micro import errors
from micro.registry.base import (
    DEFAULT_DOMAIN,
    WILDCARD_DOMAIN,
    Action,
    Node,
    Registry,
    Result,
    Service,
    Watcher,
    check_registration,
    check_service,
)

__all__ = ["MemoryRegistry"]

_WATCH_BUFFER = 10_000


@dataclass
class _Version:
    service: Service
    nodes: dict[str, tuple[Node, float]] = field(default_factory=dict)
    """node id -> (node, expiry as monotonic time; inf for none)."""

    def live(self, now: float) -> Service:
        nodes = [node for node, expiry in self.nodes.values() if expiry > now]
        return Service(
            name=self.service.name,
            version=self.service.version,
            metadata=self.service.metadata,
            endpoints=self.service.endpoints,
            nodes=nodes,
        )


class _MemoryWatcher(Watcher):
    def __init__(self, owner: MemoryRegistry, service: str | None, domain: str) -> None:
        self.service = service
        self.domain = domain
        self._owner = owner
        self._queue: asyncio.Queue[Result | None] = asyncio.Queue(_WATCH_BUFFER)
        self._stopped = False

    def offer(self, domain: str, result: Result) -> None:
        if self._stopped:
            return
        if self.domain not in (WILDCARD_DOMAIN, domain):
            return
        if self.service is not None and result.service.name != self.service:
            return
        try:
            self._queue.put_nowait(result)
        except asyncio.QueueFull:
            # A watcher that stopped reading would grow without bound: end it instead.
            self._close()

    async def next(self) -> Result:
        if self._stopped and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def _close(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._owner._watchers.discard(self)
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def stop(self) -> None:
        self._close()


class MemoryRegistry(Registry):
    """Registrations held in this process's memory."""

    name = "memory"

    def __init__(self, *, reap_interval: float = 1.0) -> None:
        self._domains: dict[str, dict[str, dict[str, _Version]]] = {}
        self._watchers: set[_MemoryWatcher] = set()
        self._reap_interval = reap_interval
        self._reaper: asyncio.Task[None] | None = None

    async def register(
        self, service: Service, *, ttl: float | None = None, domain: str = DEFAULT_DOMAIN
    ) -> None:
        check_registration(service, ttl, domain)
        expiry = time.monotonic() + ttl if ttl else float("inf")
        versions = self._domains.setdefault(domain, {}).setdefault(service.name, {})
        record = versions.get(service.version)
        action: Action = "update"
        if record is None:
            record = versions[service.version] = _Version(service)
            action = "create"
        changed = (
            record.service.endpoints != service.endpoints
            or record.service.metadata != service.metadata
        )
        record.service = service
        for node in service.nodes:
            old = record.nodes.get(node.id)
            changed = changed or old is None or old[0] != node
            record.nodes[node.id] = (node, expiry)
        if ttl:
            self._ensure_reaper()
        if action == "create" or changed:
            self._notify(domain, action, record.live(time.monotonic()))

    async def deregister(self, service: Service, *, domain: str = DEFAULT_DOMAIN) -> None:
        check_service(service, domain)
        versions = self._domains.get(domain, {}).get(service.name)
        record = versions.get(service.version) if versions else None
        if record is None or versions is None:
            return
        before = record.live(time.monotonic())
        removed = [record.nodes.pop(node.id, None) for node in service.nodes]
        if not any(removed):
            return
        self._settle(domain, service.name, versions, record, before)

    def _settle(
        self,
        domain: str,
        name: str,
        versions: dict[str, _Version],
        record: _Version,
        before: Service,
    ) -> None:
        """Drop an emptied version (and service, and domain) and tell watchers what changed."""
        if record.nodes:
            self._notify(domain, "update", record.live(time.monotonic()))
            return
        del versions[record.service.version]
        if not versions:
            self._domains[domain].pop(name, None)
            if not self._domains[domain]:
                del self._domains[domain]
        self._notify(domain, "delete", before)

    async def get_service(self, name: str, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        now = time.monotonic()
        found = [
            svc
            for dom in self._domain_names(domain)
            for record in self._domains.get(dom, {}).get(name, {}).values()
            if (svc := record.live(now)).nodes
        ]
        if not found:
            raise errors.NotFound("registry.Registry.GetService", f"service {name} not found")
        return found

    async def list_services(self, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        now = time.monotonic()
        found = [
            svc
            for dom in self._domain_names(domain)
            for versions in self._domains.get(dom, {}).values()
            for record in versions.values()
            if (svc := record.live(now)).nodes
        ]
        return sorted(found, key=lambda s: (s.name, s.version))

    def watch(self, *, service: str | None = None, domain: str = DEFAULT_DOMAIN) -> Watcher:
        watcher = _MemoryWatcher(self, service, domain)
        self._watchers.add(watcher)
        return watcher

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for watcher in list(self._watchers):
            await watcher.stop()

    # -- internals ------------------------------------------------------------------------

    def _domain_names(self, domain: str) -> list[str]:
        return list(self._domains) if domain == WILDCARD_DOMAIN else [domain]

    def _notify(self, domain: str, action: Action, service: Service) -> None:
        if not self._watchers:
            return
        result = Result(action=action, service=service, timestamp=int(time.time()))
        for watcher in list(self._watchers):
            watcher.offer(domain, result)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reap_interval)
            self.reap()

    def reap(self) -> None:
        """Remove every expired node now (the reaper calls this on its interval)."""
        now = time.monotonic()
        for domain, services in list(self._domains.items()):
            for name, versions in list(services.items()):
                for record in list(versions.values()):
                    expired = [nid for nid, (_, exp) in record.nodes.items() if exp <= now]
                    if not expired:
                        continue
                    before = Service(
                        name=record.service.name,
                        version=record.service.version,
                        metadata=record.service.metadata,
                        endpoints=record.service.endpoints,
                        nodes=[record.nodes[nid][0] for nid in expired],
                    )
                    for nid in expired:
                        del record.nodes[nid]
                    self._settle(domain, name, versions, record, before)
