"""The etcd registry against a real etcd, started here on free ports in a temporary data
dir: the conformance suite, expiry of a node whose owner stopped refreshing it, watches
across clients, a down etcd as a clear 503, prefixes that do not see each other, and a
watch that lives through an etcd restart.

Each test has its own key prefix, so they could share any etcd."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests._backends import Etcd, running
from tests._support import free_port, http

from micro import errors
from micro.registry.base import Node, Result, Service
from micro.registry.etcd import EtcdRegistry
from micro.registry.testing import RegistrySuite
from micro.server import plugins
from micro.settings import Settings


@pytest.fixture(scope="module")
def etcd() -> Iterator[Etcd]:
    """One etcd for the module's tests (each uses its own prefix)."""
    with running(Etcd.create()) as server:
        yield server


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _service(name: str, *node_ids: str) -> Service:
    return Service(
        name=name,
        version="1.0",
        metadata={"team": "core"},
        nodes=[Node(id=i, address=f"127.0.0.1:{2000 + n}") for n, i in enumerate(node_ids)],
    )


def _summary(result: Result) -> tuple[str, str, list[str]]:
    return result.action, result.service.name, [n.id for n in result.service.nodes]


class TestEtcdRegistry(RegistrySuite):
    @pytest.fixture
    async def registry(self, etcd: Etcd) -> AsyncIterator[EtcdRegistry]:
        registry = EtcdRegistry(etcd.url, prefix=_prefix())
        yield registry
        await registry.close()


@pytest.fixture
async def pair(etcd: Etcd) -> AsyncIterator[tuple[EtcdRegistry, EtcdRegistry]]:
    """Two clients of one etcd under one prefix, as two servers of a cluster."""
    prefix = _prefix()
    one, two = EtcdRegistry(etcd.url, prefix=prefix), EtcdRegistry(etcd.url, prefix=prefix)
    yield one, two
    await one.close()
    await two.close()


async def test_a_node_whose_owner_stopped_refreshing_expires(
    pair: tuple[EtcdRegistry, EtcdRegistry],
) -> None:
    owner, other = pair
    service = _service("ticker", "n1")
    await owner.register(service, ttl=2)
    async with other.watch(service="ticker") as watcher:
        # Refreshed on a timer (as the framework does), it outlives its first lease...
        for _ in range(6):
            await asyncio.sleep(0.5)
            await owner.register(service, ttl=2)
        [found] = await other.get_service("ticker")
        assert [n.id for n in found.nodes] == ["n1"]
        # ...and once its owner dies without deregistering, it goes at its TTL.
        await owner.close()
        async with asyncio.timeout(15):
            result = await watcher.next()
    assert _summary(result) == ("delete", "ticker", ["n1"])
    with pytest.raises(errors.NotFound):
        await other.get_service("ticker")


async def test_a_watch_sees_another_clients_changes(
    pair: tuple[EtcdRegistry, EtcdRegistry],
) -> None:
    writer, reader = pair
    async with reader.watch() as watcher:
        await writer.register(_service("greeter", "a"), ttl=30)
        await writer.register(_service("greeter", "b"), ttl=30)
        await writer.register(_service("greeter", "a"), ttl=30)  # a refresh: no change
        await writer.deregister(_service("greeter", "a"))
        await writer.deregister(_service("greeter", "b"))
        async with asyncio.timeout(10):
            results = [_summary(await watcher.next()) for _ in range(4)]
    assert results == [
        ("create", "greeter", ["a"]),
        ("update", "greeter", ["a", "b"]),
        ("update", "greeter", ["b"]),
        ("delete", "greeter", ["b"]),
    ]


async def test_an_unreachable_etcd_is_a_clear_503() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    registry = EtcdRegistry(address, connect_timeout=2)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: registry.register(_service("x", "n1"), ttl=5),
        lambda: registry.deregister(_service("x", "n1")),
        lambda: registry.get_service("x"),
        lambda: registry.list_services(),
        lambda: registry.watch().__aenter__(),
        lambda: registry.watch(domain="*").next(),
    ]
    try:
        for call in calls:
            with pytest.raises(errors.ServiceUnavailable) as caught:
                await call()
            assert type(caught.value) is errors.ServiceUnavailable
            assert caught.value.detail == (
                f"registry etcd at {address} unreachable: connection refused"
            )
    finally:
        await registry.close()


async def test_two_prefixes_do_not_see_each_other(etcd: Etcd) -> None:
    one = EtcdRegistry(etcd.url, prefix=_prefix())
    two = EtcdRegistry(etcd.url, prefix=_prefix())
    try:
        async with two.watch(domain="*") as watcher:
            await one.register(_service("secret", "n1"))
            with pytest.raises(errors.NotFound):
                await two.get_service("secret")
            assert await two.list_services() == []
            assert await two.list_services(domain="*") == []
            await two.register(_service("mine", "n1"))
            async with asyncio.timeout(10):
                first = await watcher.next()
        assert _summary(first) == ("create", "mine", ["n1"])
        assert [s.name for s in await one.list_services(domain="*")] == ["secret"]
    finally:
        await one.close()
        await two.close()


async def test_a_watch_lives_through_an_etcd_restart() -> None:
    with running(Etcd.create()) as server:
        registry = EtcdRegistry(server.url, prefix=_prefix(), connect_timeout=1)
        try:
            async with registry.watch() as watcher:
                await registry.register(_service("before", "n1"))
                async with asyncio.timeout(10):
                    assert _summary(await watcher.next()) == ("create", "before", ["n1"])
                await asyncio.to_thread(server.stop)
                await asyncio.to_thread(server.start)  # same ports, same data
                await registry.register(_service("after", "n1"))
                async with asyncio.timeout(30):
                    result = await watcher.next()
            assert _summary(result) == ("create", "after", ["n1"])
        finally:
            await registry.close()


def _put_compact(url: str, prefix: str, service: Service) -> None:
    """Register ``service`` (domain micro) as another client would, then compact etcd's
    history past it (blocking calls: the event loop, and so every watch, waits meanwhile)."""
    key = f"{prefix}/registry/micro/{service.name}/{service.version}/{service.nodes[0].id}"
    request = {"key": _b64(key.encode()), "value": _b64(msgspec.json.encode(service))}
    status, _, body = http("POST", f"{url}/v3/kv/put", json.dumps(request))
    assert status == 200, body
    # etcd keeps the revision compacted to: one more write, so the put's is gone too.
    request = {"key": _b64(f"{prefix}/elsewhere".encode()), "value": ""}
    status, _, body = http("POST", f"{url}/v3/kv/put", json.dumps(request))
    assert status == 200, body
    revision = json.loads(body)["header"]["revision"]
    status, _, body = http("POST", f"{url}/v3/kv/compaction", json.dumps({"revision": revision}))
    assert status == 200, body


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def test_a_watch_behind_a_compaction_reads_again(etcd: Etcd) -> None:
    prefix = _prefix()
    registry = EtcdRegistry(etcd.url, prefix=prefix)
    try:
        async with registry.watch() as watcher:
            # The watch has read its range but not yet asked etcd for what came after:
            # what comes after is compacted away before it asks.
            _put_compact(etcd.url, prefix, _service("late", "n1"))
            async with asyncio.timeout(10):
                result = await watcher.next()
        assert _summary(result) == ("create", "late", ["n1"])
    finally:
        await registry.close()


async def test_the_plugin_reads_its_address_and_prefix(etcd: Etcd, tmp_path: Path) -> None:
    prefix = _prefix()
    settings = Settings(home=tmp_path, registry_address=etcd.url, backend_prefix=prefix)
    registry = plugins.create("registry", "etcd", settings)
    assert isinstance(registry, EtcdRegistry)
    try:
        await registry.register(_service("plugged", "n1"), ttl=30)
        direct = EtcdRegistry(etcd.url, prefix=prefix)
        [found] = await direct.get_service("plugged")
        await direct.close()
        assert [n.id for n in found.nodes] == ["n1"]
    finally:
        await registry.close()
    with pytest.raises(ValueError, match="scheme must be http or https"):
        plugins.create("registry", "etcd", Settings(home=tmp_path, registry_address="nats://x:1"))
