"""The routing layer over a real in-memory registry and real RPC servers on loopback:
round robin, stale routes while the registry is away, namespaces kept apart, breakers
(per node, per service) that open on a crashing dependency and close after a probe, the
retry budget and idempotency (attempts counted on the server side), policies from config.

Time-driven behaviour (breakers' open time, the budget's refill) runs on a hand-driven
clock, so nothing here waits for wall-clock time to pass.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

import micro
from micro import errors
from micro.config.store import StoreConfig
from micro.registry.base import Endpoint, Node, Registry, Service
from micro.registry.memory import MemoryRegistry
from micro.routing import CircuitOpen, Policies, Router, RouteTable
from micro.routing import budget as budget_module
from micro.routing import router as router_module
from micro.routing.policy import ROOT, parse
from micro.rpc import Client, Server, endpoints_of
from micro.service import describe_endpoints
from micro.store.memory import MemoryStore

BOUND = 10.0
SERVICE = "flaky"


class Clock:
    """A hand-driven stand-in for ``time.monotonic`` in the router and budget modules."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(router_module, "time", SimpleNamespace(monotonic=c.monotonic))
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(monotonic=c.monotonic))
    return c


class Req(msgspec.Struct):
    name: str = ""


class Flaky:
    """Counts every attempt that reaches it; fails with 503 while ``failing``."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.failing = False

    async def write(self, req: Req) -> str:
        self.attempts["write"] += 1
        if self.failing:
            raise errors.ServiceUnavailable(SERVICE, "overloaded")
        return f"wrote {req.name}"

    @micro.idempotent
    async def read(self, req: Req) -> str:
        self.attempts["read"] += 1
        if self.failing:
            raise errors.ServiceUnavailable(SERVICE, "overloaded")
        return f"read {req.name}"


class Node_:
    """One node of the service: a real server, stopped and started again on its port."""

    def __init__(self, handler: Flaky) -> None:
        self.handler = handler
        self.server: Server | None = None
        self.address = "127.0.0.1:0"

    async def start(self) -> None:
        self.server = Server()
        self.server.add(SERVICE, endpoints_of(self.handler))
        bound = await self.server.start(self.address)
        self.address = f"{bound.host}:{bound.port}"

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=0)
            self.server = None


async def _register(registry: Registry, nodes: list[Node_], *, domain: str = "micro") -> None:
    eps = describe_endpoints(endpoints_of(Flaky()))
    await registry.register(
        Service(
            name=SERVICE,
            endpoints=eps,
            nodes=[Node(id=f"n{i}", address=n.address) for i, n in enumerate(nodes)],
        ),
        domain=domain,
    )


@pytest.fixture
async def nodes() -> AsyncIterator[list[Node_]]:
    started = [Node_(Flaky()) for _ in range(2)]
    for node in started:
        await node.start()
    yield started
    for node in started:
        await node.stop()


@pytest.fixture
async def registry() -> AsyncIterator[MemoryRegistry]:
    reg = MemoryRegistry()
    yield reg
    await reg.close()


class Away(Registry):
    """A registry that can be taken away: then every read fails as an unreachable one does."""

    def __init__(self, inner: Registry) -> None:
        self.inner = inner
        self.away = False
        self.reads = 0

    def _check(self) -> None:
        if self.away:
            raise errors.ServiceUnavailable("registry", "Registry etcd at http://x unreachable")

    async def register(self, service: Service, **kw: Any) -> None:
        await self.inner.register(service, **kw)

    async def deregister(self, service: Service, **kw: Any) -> None:
        await self.inner.deregister(service, **kw)

    async def get_service(self, name: str, **kw: Any) -> list[Service]:
        self.reads += 1
        self._check()
        return await self.inner.get_service(name, **kw)

    async def list_services(self, **kw: Any) -> list[Service]:
        self._check()
        return await self.inner.list_services(**kw)

    def watch(self, **kw: Any) -> Any:
        return self.inner.watch(**kw)


async def _until(check: Callable[[], bool]) -> None:
    """Poll ``check`` (a background task's effect) until true; bounded by the test's timeout."""
    for _ in range(int(BOUND / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    pytest.fail("not as wanted in time")


def _client(router: Router) -> Client:
    return Client(router=router, metadata={"micro-namespace": "micro"})


@pytest.fixture
def policies() -> Policies:
    return Policies()


def _set_policy(policies: Policies, tree: dict[str, Any]) -> None:
    policies.set_tree("micro", {SERVICE: tree})


# -- routes ---------------------------------------------------------------------------------


async def test_calls_go_round_robin_over_the_nodes(
    registry: MemoryRegistry, nodes: list[Node_]
) -> None:
    await _register(registry, nodes)
    client = _client(Router(RouteTable(registry)))
    try:
        async with asyncio.timeout(BOUND):
            for i in range(6):
                assert await client.call(SERVICE, "Flaky.Write", Req(str(i))) == f"wrote {i}"
    finally:
        await client.close()
    assert [n.handler.attempts["write"] for n in nodes] == [3, 3]


async def test_known_routes_are_served_while_the_registry_is_away(
    registry: MemoryRegistry, nodes: list[Node_]
) -> None:
    await _register(registry, nodes)
    away = Away(registry)
    table = RouteTable(away)
    client = _client(Router(table))
    try:
        async with asyncio.timeout(BOUND):
            assert await client.call(SERVICE, "Flaky.Write", Req("a")) == "wrote a"
            away.away = True
            table.expire()  # as if its TTL had passed (and the watch missed it)
            for i in range(4):
                assert await client.call(SERVICE, "Flaky.Write", Req(str(i))) == f"wrote {i}"
            # An unknown service has nothing to serve: the registry's error, as it is.
            with pytest.raises(errors.ServiceUnavailable, match="Registry etcd"):
                await client.call("nosuch", "Nosuch.Call")
            away.away = False
            table.expire()
            await client.call(SERVICE, "Flaky.Write", Req("back"))
            await _until(lambda: away.reads >= 3)  # the background re-read after the outage
    finally:
        await client.close()


async def test_a_deregistered_service_is_dropped_not_served_stale(
    registry: MemoryRegistry, nodes: list[Node_]
) -> None:
    await _register(registry, nodes)
    table = RouteTable(registry)
    router = Router(table)
    try:
        async with asyncio.timeout(BOUND):
            assert (await router.route(SERVICE, "micro")).nodes
            for version in await registry.get_service(SERVICE):
                await registry.deregister(version)
            await _until(lambda: table.cached(SERVICE, "micro") is None)  # told by the watch
            with pytest.raises(errors.NotFound):
                await router.route(SERVICE, "micro")
    finally:
        await router.close()


async def test_namespaces_are_kept_apart_and_core_services_are_the_servers(
    registry: MemoryRegistry, nodes: list[Node_]
) -> None:
    await _register(registry, nodes[:1], domain="tenant")
    await registry.register(
        Service(name="store", nodes=[Node(id="x", address="127.0.0.1:9")]), domain="micro"
    )
    table = RouteTable(registry)
    try:
        assert (await table.lookup(SERVICE, "tenant")).nodes == (nodes[0].address,)
        with pytest.raises(errors.NotFound):
            await table.lookup(SERVICE, "micro")
        with pytest.raises(errors.NotFound):
            await table.lookup(SERVICE, "other")
        # "store" named in a tenant's call is the server's, whatever the tenant registered.
        assert (await table.lookup("store", "tenant")).nodes == ("127.0.0.1:9",)
    finally:
        await table.stop()


# -- breakers -------------------------------------------------------------------------------


async def test_a_crashing_dependency_opens_its_breaker_then_a_probe_closes_it(
    registry: MemoryRegistry, nodes: list[Node_], clock: Clock, policies: Policies
) -> None:
    await _register(registry, nodes)
    _set_policy(policies, {"retries": 0, "breaker": {"failures": 3, "open_for": "5s"}})
    client = _client(Router(RouteTable(registry), policies=policies))
    try:
        async with asyncio.timeout(BOUND):
            await client.call(SERVICE, "Flaky.Write", Req("warm"))
            for node in nodes:
                node.handler.failing = True
            for _ in range(3):
                with pytest.raises(errors.ServiceUnavailable, match="overloaded"):
                    await client.call(SERVICE, "Flaky.Write", Req("x"))
            reached = sum(n.handler.attempts["write"] for n in nodes)
            # Open: calls fail fast, naming the breaker, and reach no node.
            for _ in range(5):
                with pytest.raises(CircuitOpen) as caught:
                    await client.call(SERVICE, "Flaky.Write", Req("x"))
                assert caught.value.code == 503
                assert "circuit breaker of service flaky is open" in caught.value.detail
            assert sum(n.handler.attempts["write"] for n in nodes) == reached
            # The dependency is back; once the open time is over one probe goes and closes it.
            for node in nodes:
                node.handler.failing = False
            clock.now += 5.0
            assert await client.call(SERVICE, "Flaky.Write", Req("probe")) == "wrote probe"
            for i in range(4):
                assert await client.call(SERVICE, "Flaky.Write", Req(str(i))) == f"wrote {i}"
    finally:
        await client.close()


async def test_a_crashed_process_is_failed_fast_until_it_is_back(
    registry: MemoryRegistry, nodes: list[Node_], clock: Clock, policies: Policies
) -> None:
    await _register(registry, nodes[:1])
    _set_policy(policies, {"breaker": {"open_for": "5s"}})
    client = _client(Router(RouteTable(registry), policies=policies))
    node = nodes[0]
    try:
        async with asyncio.timeout(BOUND):
            assert await client.call(SERVICE, "Flaky.Write", Req("a")) == "wrote a"
            await node.stop()  # its process is gone: connections refused from now on
            # The calls that find it gone fail with what happened (a lost connection, a
            # refused one); the refusal opens the node's breaker at once.
            seen: list[errors.MicroError] = []
            for _ in range(3):
                try:
                    await client.call(SERVICE, "Flaky.Write", Req("b"))
                except errors.ServiceUnavailable as exc:
                    seen.append(exc)
                    if isinstance(exc, CircuitOpen):
                        break
            assert isinstance(seen[-1], CircuitOpen), seen
            assert isinstance(seen[0], errors.ConnectionError), seen
            detail = seen[-1].detail
            assert "circuit breakers of every node of service flaky are open" in detail
            await node.start()  # back, on the same address
            with pytest.raises(CircuitOpen):
                await client.call(SERVICE, "Flaky.Write", Req("d"))  # still open
            clock.now += 5.0
            assert await client.call(SERVICE, "Flaky.Write", Req("e")) == "wrote e"  # probe
            assert await client.call(SERVICE, "Flaky.Write", Req("f")) == "wrote f"
    finally:
        await client.close()
    assert node.handler.attempts["write"] == 3


async def test_a_half_open_breaker_lets_one_probe_through_and_reopens_on_its_failure(
    registry: MemoryRegistry, nodes: list[Node_], clock: Clock, policies: Policies
) -> None:
    await _register(registry, nodes[:1])
    _set_policy(policies, {"retries": 0, "breaker": {"failures": 1, "open_for": 5}})
    client = _client(Router(RouteTable(registry), policies=policies))
    handler = nodes[0].handler
    try:
        async with asyncio.timeout(BOUND):
            handler.failing = True
            with pytest.raises(errors.ServiceUnavailable, match="overloaded"):
                await client.call(SERVICE, "Flaky.Write", Req("x"))
            clock.now += 5.0
            with pytest.raises(errors.ServiceUnavailable, match="overloaded"):  # the probe
                await client.call(SERVICE, "Flaky.Write", Req("probe"))
            with pytest.raises(CircuitOpen):  # open again at once
                await client.call(SERVICE, "Flaky.Write", Req("x"))
            assert handler.attempts["write"] == 2
    finally:
        await client.close()


async def test_a_dead_node_is_ejected_and_calls_go_to_the_live_one(
    registry: MemoryRegistry, nodes: list[Node_], clock: Clock
) -> None:
    await _register(registry, nodes)
    await nodes[0].stop()
    client = _client(Router(RouteTable(registry)))
    try:
        async with asyncio.timeout(BOUND):
            for i in range(6):
                assert await client.call(SERVICE, "Flaky.Write", Req(str(i))) == f"wrote {i}"
            assert nodes[1].handler.attempts["write"] == 6
    finally:
        await client.close()


# -- retries, idempotency, the budget -------------------------------------------------------


async def test_only_idempotent_endpoints_are_retried_once_sent(
    registry: MemoryRegistry, nodes: list[Node_], clock: Clock, policies: Policies
) -> None:
    await _register(registry, nodes[:1])
    _set_policy(policies, {"retries": 3, "backoff": "1ms", "breaker": {"failures": 1000}})
    client = _client(Router(RouteTable(registry), policies=policies))
    handler = nodes[0].handler
    handler.failing = True
    try:
        async with asyncio.timeout(BOUND):
            with pytest.raises(errors.ServiceUnavailable):
                await client.call(SERVICE, "Flaky.Write", Req("x"))
            with pytest.raises(errors.ServiceUnavailable):
                await client.call(SERVICE, "Flaky.Read", Req("x"))
    finally:
        await client.close()
    assert handler.attempts == {"write": 1, "read": 4}


async def test_retries_never_exceed_the_budget_under_a_bounded_load(
    registry: MemoryRegistry, nodes: list[Node_], clock: Clock, policies: Policies
) -> None:
    await _register(registry, nodes)
    calls, floor = 200, 5
    _set_policy(
        policies,
        {
            "retries": 3,
            "backoff": "1ms",
            "breaker": {"failures": 100_000},
            "budget": {"ratio": 0.1, "floor": floor},
        },
    )
    client = _client(Router(RouteTable(registry), policies=policies))
    for node in nodes:
        node.handler.failing = True
    room = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with room:
            with pytest.raises(errors.ServiceUnavailable):
                await client.call(SERVICE, "Flaky.Read", Req(str(i)))

    try:
        async with asyncio.timeout(BOUND):
            await asyncio.gather(*(one(i) for i in range(calls)))
    finally:
        await client.close()
    attempts = sum(n.handler.attempts["read"] for n in nodes)
    # Without a budget: 4 attempts per call (800). With it: 10 % more than the calls, plus
    # the floor (the clock does not move: nothing refills).
    assert calls < attempts <= calls + calls * 0.1 + floor


def test_policies_read_from_config_trees() -> None:
    tree = {
        "orders": {
            "timeout": "2s",
            "retries": 1,
            "breaker": {"failures": 7, "open_for": "30s"},
            "budget": {"ratio": 0.2},
            "Orders": {"Get": {"retries": 4, "timeout": "500ms"}},
        },
        "bad": {"retries": "many", "timeout": True},
    }
    get = parse(tree, "orders", "Orders.Get")
    assert (get.retries, get.timeout, get.breaker_failures, get.breaker_open_for) == (
        4,
        0.5,
        7,
        30.0,
    )
    assert get.budget_ratio == 0.2
    create = parse(tree, "orders", "Orders.Create")
    assert (create.retries, create.timeout) == (1, 2.0)
    assert parse(tree, "bad", "Bad.Call") == parse({}, "bad", "Bad.Call")  # ignored, not fatal
    assert parse(None, "orders", "Orders.Get").retries == 2


async def test_policies_follow_config_changes() -> None:
    config = StoreConfig(MemoryStore())
    policies = Policies(lambda ns: config.watch(ROOT, namespace=ns))
    try:
        async with asyncio.timeout(BOUND):
            assert policies.get("team", "orders", "Orders.Get").retries == 2  # default first
            await config.set(f"{ROOT}.orders.Orders.Get.retries", 5, namespace="team")
            await _until(lambda: policies.get("team", "orders", "Orders.Get").retries == 5)
            await config.set(f"{ROOT}.orders.retries", 0, namespace="team")
            await _until(lambda: policies.get("team", "orders", "Orders.List").retries == 0)
            assert policies.get("micro", "orders", "Orders.List").retries == 2  # not team's
    finally:
        await policies.stop()
        await config.close()


def test_idempotent_is_published_in_the_endpoint_metadata() -> None:
    eps = {e.name: e for e in describe_endpoints(endpoints_of(Flaky()))}
    assert eps["Flaky.Read"].metadata.get("idempotent") == "true"
    assert "idempotent" not in eps["Flaky.Write"].metadata
    assert isinstance(eps["Flaky.Read"], Endpoint)
