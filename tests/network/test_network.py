"""``micro network services|nodes|routes`` against a real server, and namespace isolation:
an account of ``foo`` sees (and reaches) only ``foo``'s services."""

from __future__ import annotations

import re

import pytest
from tests._support import HELLOWORLD, ok

from micro import errors
from micro.rpc import Client
from micro.testing import MicroServerProcess

ROUTES_HEADER = r"SERVICE\s+ADDRESS\s+GATEWAY\s+ROUTER\s+NETWORK\s+METRIC\s+LINK"


@pytest.fixture
def hello(micro_server: MicroServerProcess) -> MicroServerProcess:
    """A server with two helloworld instances."""
    micro_server.start_service(HELLOWORLD, name="helloworld")
    micro_server.start_service(HELLOWORLD, name="helloworld")
    return micro_server


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def test_services(hello: MicroServerProcess) -> None:
    names = ok(hello.micro("network", "services")).splitlines()
    assert {"helloworld", "network", "registry", "store"} <= set(names)
    assert names == sorted(set(names))
    assert names == ok(hello.micro("services")).splitlines()


def test_nodes(hello: MicroServerProcess) -> None:
    out = ok(hello.micro("network", "nodes"))
    assert re.match(r"ID\s+ADDRESS\s+METADATA\n", out)
    found = rows(out)[1:]
    hello_nodes = [row for row in found if row[0].startswith("helloworld-")]
    assert len(hello_nodes) == 2
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", row[1]) for row in hello_nodes)
    assert all("protocol=micro" in row[2] for row in hello_nodes)
    assert [row[0] for row in found] == sorted(row[0] for row in found)


def test_routes_two_instances_two_routes(hello: MicroServerProcess) -> None:
    out = ok(hello.micro("network", "routes", "--service", "helloworld"))
    assert re.match(ROUTES_HEADER + "\n", out)
    found = rows(out)[1:]
    assert len(found) == 2
    assert len({row[1] for row in found}) == 2
    for service, address, gateway, router, network, metric, link in found:
        assert service == "helloworld"
        assert re.fullmatch(r"127\.0\.0\.1:\d+", address)
        assert (gateway, network, metric, link) == ("n/a", "micro", "1", "local")
        assert re.fullmatch(r"network-\w+", router)
    everything = rows(ok(hello.micro("network", "routes")))[1:]
    assert {"helloworld", "registry", "network"} <= {row[0] for row in everything}
    assert ok(hello.micro("network", "routes", "--service", "nosuch")) == ""
    assert ok(hello.micro("network", "routes", "--network", "foo")) == ""


async def test_namespaces_are_isolated(hello: MicroServerProcess) -> None:
    server = hello
    ok(
        server.micro(
            "auth",
            "create",
            "account",
            "--namespace",
            "foo",
            "--secret",
            "x",
            "--scopes",
            "admin",
            "jane",
        )
    )
    ok(server.micro("-n", "foo", "login", "--username", "jane", "--password", "x"))
    assert ok(server.micro("-n", "foo", "user")) == "jane\n"
    assert ok(server.micro("-n", "foo", "network", "services")) == ""
    assert ok(server.micro("-n", "foo", "network", "routes")) == ""

    # jane runs a service of her own in foo.
    in_foo = server.env(MICRO_NAMESPACE="foo", MICRO_SERVICE_NAME="secret")
    server.start_service(HELLOWORLD, name="secret", env=in_foo)
    assert ok(server.micro("-n", "foo", "network", "services")) == "secret\n"
    [route] = rows(ok(server.micro("-n", "foo", "network", "routes")))[1:]
    assert (route[0], route[4]) == ("secret", "foo")
    [node] = rows(ok(server.micro("-n", "foo", "network", "nodes")))[1:]
    assert node[0].startswith("secret-")
    assert "secret" not in ok(server.micro("network", "services")).split()

    # Nor can she reach micro's helloworld from foo, nor list micro's services even with
    # her token in hand. (Calling micro's services is up to micro's rules: its default
    # rule is public, to anyone who asks in namespace micro.)
    called = server.micro("-n", "foo", "call", "helloworld", "Helloworld.Call", '{"name": "x"}')
    assert called.returncode == 4, called.stderr
    assert called.stderr == 'Service "helloworld" not found\n'
    token = ok(server.micro("-n", "foo", "user", "token")).strip()
    answers: dict[str, object] = {}
    for namespace in ("micro", "foo"):
        client = Client(
            proxy=server.proxy,
            metadata={"authorization": f"Bearer {token}", "micro-namespace": namespace},
        )
        try:
            answers[namespace] = await client.call("network", "Network.Services", {})
        except errors.MicroError as exc:
            answers[namespace] = exc
        finally:
            await client.close()
    assert isinstance(answers["micro"], errors.Forbidden)
    assert answers["foo"] == {"services": ["secret"]}
