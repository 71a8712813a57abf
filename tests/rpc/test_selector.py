"""Node selection: round robin, ejection, the all-ejected fallback and the lookup cache;
and the client retrying a refused connection on another node of a real pair of servers."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

import pytest
from tests.rpc.greeter_service import SERVICE, Greeter, Probe, Req, Resp, WatchedServer

from micro import errors
from micro.rpc import Client, endpoints_of
from micro.rpc import selector as selector_module
from micro.rpc.selector import Selector

BOUND = 10.0


class Clock:
    """A hand-driven stand-in for ``time.monotonic`` in the selector module."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """A lookup over a dict that counts how often it is asked."""

    def __init__(self, nodes: dict[str, list[str]]) -> None:
        self.nodes = nodes
        self.calls = 0

    async def __call__(self, service: str, namespace: str) -> list[str]:
        self.calls += 1
        if service not in self.nodes:
            raise errors.NotFound(service, f"service {service} not found")
        return list(self.nodes[service])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(selector_module, "time", SimpleNamespace(monotonic=c))
    return c


async def test_round_robin_over_the_nodes(clock: Clock) -> None:
    sel = Selector(Registry({"svc": ["a", "b", "c"]}))
    picks = [await sel.select("svc", "micro") for _ in range(9)]
    assert picks == ["a", "b", "c"] * 3


async def test_ejected_node_is_skipped_until_its_time_is_up(clock: Clock) -> None:
    sel = Selector(Registry({"svc": ["a", "b", "c"]}), eject_for=10.0)
    sel.eject("b")
    picks = [await sel.select("svc", "micro") for _ in range(6)]
    assert "b" not in picks
    assert Counter(picks) == {"a": 3, "c": 3}
    clock.now += 11.0
    picks = [await sel.select("svc", "micro") for _ in range(6)]
    assert Counter(picks) == {"a": 2, "b": 2, "c": 2}


async def test_every_node_ejected_falls_back_to_trying_one(clock: Clock) -> None:
    sel = Selector(Registry({"svc": ["a", "b"]}))
    sel.eject("a")
    sel.eject("b")
    assert await sel.select("svc", "micro") in {"a", "b"}


async def test_exclude_skips_nodes_already_tried(clock: Clock) -> None:
    sel = Selector(Registry({"svc": ["a", "b", "c"]}))
    for _ in range(5):
        assert await sel.select("svc", "micro", exclude=["a", "c"]) == "b"
    with pytest.raises(errors.ServiceUnavailable):
        await sel.select("svc", "micro", exclude=["a", "b", "c"])


async def test_no_nodes_is_service_unavailable(clock: Clock) -> None:
    sel = Selector(Registry({"svc": []}))
    with pytest.raises(errors.ServiceUnavailable, match="svc"):
        await sel.select("svc", "micro")


async def test_unknown_service_is_the_lookups_not_found(clock: Clock) -> None:
    sel = Selector(Registry({}))
    with pytest.raises(errors.NotFound):
        await sel.select("nobody", "micro")


async def test_lookups_are_cached_for_the_ttl(clock: Clock) -> None:
    registry = Registry({"svc": ["a"]})
    sel = Selector(registry, ttl=5.0)
    for _ in range(10):
        await sel.select("svc", "micro")
    assert registry.calls == 1
    registry.nodes["svc"] = ["z"]
    clock.now += 4.0
    assert await sel.select("svc", "micro") == "a"  # still cached
    clock.now += 2.0
    assert await sel.select("svc", "micro") == "z"  # expired: asked again
    assert registry.calls == 2


async def test_cache_is_per_namespace(clock: Clock) -> None:
    registry = Registry({"svc": ["a"]})
    sel = Selector(registry)
    await sel.select("svc", "micro")
    await sel.select("svc", "team")
    assert registry.calls == 2


async def test_ejecting_a_node_refreshes_the_lookup(clock: Clock) -> None:
    registry = Registry({"svc": ["a", "b"]})
    sel = Selector(registry, ttl=60.0)
    await sel.select("svc", "micro")
    registry.nodes["svc"] = ["b", "c"]
    sel.eject("a")
    assert {await sel.select("svc", "micro") for _ in range(4)} == {"b", "c"}
    assert registry.calls == 2


async def test_invalidate_forgets_lookups(clock: Clock) -> None:
    registry = Registry({"svc": ["a"], "other": ["o"]})
    sel = Selector(registry, ttl=60.0)
    await sel.select("svc", "micro")
    await sel.select("other", "micro")
    sel.invalidate("svc")
    await sel.select("svc", "micro")
    await sel.select("other", "micro")
    assert registry.calls == 3
    sel.invalidate()
    await sel.select("other", "micro")
    assert registry.calls == 4


# -- the client over real servers ----------------------------------------------------------


async def _start() -> WatchedServer:
    server = WatchedServer()
    server.add(SERVICE, endpoints_of(Greeter(Probe())))
    await server.start("127.0.0.1:0")
    return server


async def test_client_retries_a_refused_node_on_another() -> None:
    alive, dead = await _start(), await _start()
    dead_address = str(dead.address)
    await dead.stop(grace=0)
    registry = Registry({SERVICE: [dead_address, str(alive.address)]})
    client = Client(lookup=registry)
    try:
        async with asyncio.timeout(BOUND):
            replies = [
                await client.call(SERVICE, "Greeter.Hello", Req(str(i)), response_type=Resp)
                for i in range(6)
            ]
            stream = await client.stream(SERVICE, "Greeter.Count", Req("s", count=2))
            assert len([m async for m in stream]) == 2
    finally:
        await client.close()
        await alive.stop(grace=0)
    assert replies == [Resp(f"hello {i}") for i in range(6)]
    assert len(alive.accepted) == 1
    assert client.selector is not None
    assert dead_address in client.selector._ejected


async def test_client_spreads_calls_over_live_nodes() -> None:
    servers = [await _start(), await _start()]
    registry = Registry({SERVICE: [str(s.address) for s in servers]})
    client = Client(lookup=registry)
    try:
        async with asyncio.timeout(BOUND):
            for i in range(4):
                await client.call(SERVICE, "Greeter.Hello", Req(str(i)))
    finally:
        await client.close()
        for s in servers:
            await s.stop(grace=0)
    assert [len(s.accepted) for s in servers] == [1, 1]
    assert [s.stats["requests"] for s in servers] == [2, 2]


async def test_client_gives_up_when_every_node_refuses() -> None:
    dead = [await _start() for _ in range(2)]
    addresses = [str(s.address) for s in dead]
    for s in dead:
        await s.stop(grace=0)
    client = Client(lookup=Registry({SERVICE: addresses}), retries=5)
    try:
        async with asyncio.timeout(BOUND):
            with pytest.raises(errors.ServiceUnavailable):
                await client.call(SERVICE, "Greeter.Hello", Req("x"))
    finally:
        await client.close()
