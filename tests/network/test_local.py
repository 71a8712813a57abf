"""The network block in-process: a registry read as services, nodes and routes, and the
handler's namespace checks on calls made up by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from micro import errors
from micro.auth.base import Account
from micro.network.handler import Network
from micro.network.local import LocalNetwork
from micro.network.proto import Query, RoutesRequest, ServicesRequest
from micro.registry.base import Node, Service
from micro.registry.memory import MemoryRegistry
from micro.rpc import context
from micro.rpc.context import Call

T = TypeVar("T")

JANE = Account(id="jane", issuer="foo", scopes=["admin"])
ROOT = Account(id="admin", issuer="micro", scopes=["admin"])


@pytest.fixture
async def network() -> AsyncIterator[LocalNetwork]:
    registry = MemoryRegistry()
    for domain, name, nodes in [
        ("micro", "registry", [("registry-1", "127.0.0.1:8081")]),
        ("micro", "helloworld", [("hw-2", "127.0.0.1:2002"), ("hw-1", "127.0.0.1:2001")]),
        ("foo", "secret", [("secret-1", "127.0.0.1:3001")]),
    ]:
        service = Service(name, nodes=[Node(i, a, {"protocol": "micro"}) for i, a in nodes])
        await registry.register(service, domain=domain)
    yield LocalNetwork(registry, router="network-1")
    await registry.close()


async def test_services_of_one_namespace(network: LocalNetwork) -> None:
    assert await network.services("micro") == ["helloworld", "registry"]
    assert await network.services("foo") == ["secret"]
    assert await network.services("bar") == []


async def test_nodes_sorted_by_id(network: LocalNetwork) -> None:
    found = await network.nodes("micro")
    assert [(n.id, n.address) for n in found] == [
        ("hw-1", "127.0.0.1:2001"),
        ("hw-2", "127.0.0.1:2002"),
        ("registry-1", "127.0.0.1:8081"),
    ]
    assert found[0].metadata == {"protocol": "micro"}


async def test_a_route_per_node(network: LocalNetwork) -> None:
    routes = await network.routes("micro", Query(service="helloworld"))
    assert [(r.service, r.address) for r in routes] == [
        ("helloworld", "127.0.0.1:2001"),
        ("helloworld", "127.0.0.1:2002"),
    ]
    route = routes[0]
    assert (route.gateway, route.network, route.router, route.link, route.metric) == (
        "",
        "micro",
        "network-1",
        "local",
        1,
    )
    assert route.metadata == {"protocol": "micro"}
    assert len(await network.routes("micro")) == 3
    foo = await network.routes("foo")
    assert [(r.service, r.network) for r in foo] == [("secret", "foo")]


@pytest.mark.parametrize(
    ("query", "count"),
    [
        (Query(address="127.0.0.1:2002"), 1),
        (Query(network="micro"), 3),
        (Query(network="foo"), 0),  # another network: never seen from micro
        (Query(router="network-1"), 3),
        (Query(router="elsewhere"), 0),
        (Query(gateway="10.0.0.1:1"), 0),
        (Query(service="nosuch"), 0),
    ],
)
async def test_route_queries(network: LocalNetwork, query: Query, count: int) -> None:
    assert len(await network.routes("micro", query)) == count


async def as_caller(account: Account | None, namespace: str, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call`` as if serving a call of ``account`` in ``namespace`` a door admitted."""

    async def run() -> T:
        served = Call("network", "Network.Services", {"micro-namespace": namespace}, "")
        served.account = account
        served.checked = True
        context._set(served)
        return await call()

    return await asyncio.create_task(run())  # the task has a context of its own


async def test_handler_acts_in_the_callers_namespace(network: LocalNetwork) -> None:
    handler = Network(network)
    answer = await as_caller(JANE, "foo", lambda: handler.services(ServicesRequest()))
    assert answer.services == ["secret"]
    routes = await as_caller(JANE, "foo", lambda: handler.routes(RoutesRequest()))
    assert [r.service for r in routes.routes] == ["secret"]
    answer = await as_caller(ROOT, "micro", lambda: handler.services(ServicesRequest()))
    assert answer.services == ["helloworld", "registry"]


async def test_handler_refuses_another_namespace(network: LocalNetwork) -> None:
    handler = Network(network)
    with pytest.raises(errors.Forbidden):
        await as_caller(JANE, "micro", lambda: handler.services(ServicesRequest()))
    with pytest.raises(errors.Unauthorized):
        await as_caller(None, "foo", lambda: handler.routes(RoutesRequest()))
