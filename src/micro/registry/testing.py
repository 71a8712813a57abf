"""The registry conformance suite: every implementation must pass it, the RPC client included.

Use it by subclassing in a test module and providing a ``registry`` fixture::

    class TestMemory(RegistrySuite):
        @pytest.fixture
        async def registry(self):
            reg = MemoryRegistry(reap_interval=0.05)
            yield reg
            await reg.close()

Each test uses its own domain, so a suite can run against a shared real backend.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from micro import errors
from micro.registry.base import Endpoint, Node, Registry, Service

__all__ = ["RegistrySuite"]


def _domain() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _service(name: str = "greeter", version: str = "1.0", *node_ids: str) -> Service:
    ids = node_ids or ("n1",)
    return Service(
        name=name,
        version=version,
        metadata={"team": "core"},
        endpoints=[
            Endpoint(
                name="Greeter.Hello",
                request={"type": "object", "properties": {"name": {"type": "string"}}},
                response={"type": "object"},
            )
        ],
        nodes=[Node(id=i, address=f"127.0.0.1:{1000 + n}") for n, i in enumerate(ids)],
    )


class RegistrySuite:
    """Behaviour every :class:`~micro.registry.base.Registry` must show."""

    async def test_register_then_get(self, registry: Registry) -> None:
        domain = _domain()
        await registry.register(_service(), domain=domain)
        [found] = await registry.get_service("greeter", domain=domain)
        assert (found.name, found.version) == ("greeter", "1.0")
        assert [n.id for n in found.nodes] == ["n1"]
        assert found.endpoints[0].name == "Greeter.Hello"
        assert found.endpoints[0].request["properties"]["name"] == {"type": "string"}
        assert found.metadata == {"team": "core"}

    async def test_get_unknown_is_not_found(self, registry: Registry) -> None:
        with pytest.raises(errors.NotFound):
            await registry.get_service("nobody", domain=_domain())

    async def test_list_empty_domain(self, registry: Registry) -> None:
        assert await registry.list_services(domain=_domain()) == []

    async def test_nodes_accumulate_and_deregister_one(self, registry: Registry) -> None:
        domain = _domain()
        await registry.register(_service("greeter", "1.0", "a"), domain=domain)
        await registry.register(_service("greeter", "1.0", "b"), domain=domain)
        [found] = await registry.get_service("greeter", domain=domain)
        assert sorted(n.id for n in found.nodes) == ["a", "b"]
        await registry.deregister(_service("greeter", "1.0", "a"), domain=domain)
        [found] = await registry.get_service("greeter", domain=domain)
        assert [n.id for n in found.nodes] == ["b"]
        await registry.deregister(_service("greeter", "1.0", "b"), domain=domain)
        with pytest.raises(errors.NotFound):
            await registry.get_service("greeter", domain=domain)

    async def test_versions_are_separate(self, registry: Registry) -> None:
        domain = _domain()
        await registry.register(_service("greeter", "1.0", "a"), domain=domain)
        await registry.register(_service("greeter", "2.0", "b"), domain=domain)
        found = await registry.get_service("greeter", domain=domain)
        assert sorted(s.version for s in found) == ["1.0", "2.0"]
        listed = await registry.list_services(domain=domain)
        assert [(s.name, s.version) for s in listed] == [("greeter", "1.0"), ("greeter", "2.0")]

    async def test_list_is_sorted(self, registry: Registry) -> None:
        domain = _domain()
        for name in ("zeta", "alpha", "mid"):
            await registry.register(_service(name), domain=domain)
        names = [s.name for s in await registry.list_services(domain=domain)]
        assert names == ["alpha", "mid", "zeta"]

    async def test_domains_are_isolated(self, registry: Registry) -> None:
        one, two = _domain(), _domain()
        await registry.register(_service("secret"), domain=one)
        with pytest.raises(errors.NotFound):
            await registry.get_service("secret", domain=two)
        assert await registry.list_services(domain=two) == []

    async def test_deregister_unknown_is_not_an_error(self, registry: Registry) -> None:
        await registry.deregister(_service("ghost"), domain=_domain())

    async def test_register_refreshes_endpoints(self, registry: Registry) -> None:
        domain = _domain()
        await registry.register(_service(), domain=domain)
        changed = _service()
        changed.endpoints = [Endpoint(name="Greeter.Bye")]
        await registry.register(changed, domain=domain)
        [found] = await registry.get_service("greeter", domain=domain)
        assert [e.name for e in found.endpoints] == ["Greeter.Bye"]

    async def test_bad_registrations_are_rejected(self, registry: Registry) -> None:
        domain = _domain()
        with pytest.raises(errors.BadRequest):
            await registry.register(Service(name="", nodes=[Node("a", "x:1")]), domain=domain)
        with pytest.raises(errors.BadRequest):
            await registry.register(Service(name="empty"), domain=domain)
        with pytest.raises(errors.BadRequest):
            await registry.register(_service(), ttl=-1, domain=domain)

    async def test_ttl_expiry(self, registry: Registry) -> None:
        domain = _domain()
        await registry.register(_service("brief", "1", "gone"), ttl=0.3, domain=domain)
        await registry.register(_service("brief", "1", "kept"), ttl=60, domain=domain)
        async with registry.watch(service="brief", domain=domain) as watcher:
            async with asyncio.timeout(10):
                while True:
                    result = await watcher.next()
                    if result.action in ("update", "delete"):
                        break
        [found] = await registry.get_service("brief", domain=domain)
        assert [n.id for n in found.nodes] == ["kept"]

    async def test_ttl_expiry_of_last_node_deletes(self, registry: Registry) -> None:
        domain = _domain()
        async with registry.watch(domain=domain) as watcher:
            await registry.register(_service("short"), ttl=0.3, domain=domain)
            async with asyncio.timeout(10):
                first = await watcher.next()
                assert first.action == "create"
                second = await watcher.next()
        assert second.action == "delete"
        assert second.service.name == "short"
        with pytest.raises(errors.NotFound):
            await registry.get_service("short", domain=domain)

    async def test_watch_sees_changes_in_order(self, registry: Registry) -> None:
        domain = _domain()
        async with registry.watch(domain=domain) as watcher:
            await registry.register(_service("w", "1", "a"), domain=domain)
            await registry.register(_service("w", "1", "b"), domain=domain)
            await registry.deregister(_service("w", "1", "a", "b"), domain=domain)
            async with asyncio.timeout(10):
                actions = [(await watcher.next()).action for _ in range(3)]
        assert actions == ["create", "update", "delete"]

    async def test_watch_filters_by_service_and_domain(self, registry: Registry) -> None:
        domain, other = _domain(), _domain()
        async with registry.watch(service="wanted", domain=domain) as watcher:
            await registry.register(_service("unwanted"), domain=domain)
            await registry.register(_service("wanted"), domain=other)
            await registry.register(_service("wanted"), domain=domain)
            async with asyncio.timeout(10):
                result = await watcher.next()
        assert result.service.name == "wanted"
        assert result.action == "create"

    async def test_stopped_watcher_ends(self, registry: Registry) -> None:
        watcher = registry.watch(domain=_domain())
        await watcher.stop()
        with pytest.raises(StopAsyncIteration):
            await watcher.next()
