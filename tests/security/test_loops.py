"""Issue 14, item 12: a call can never go round in a loop.

Before, a tenant that registered a node at the proxy's own address made one call spin the
proxy at 100% CPU for 20 s, forwarding to itself. Now the proxy never forwards to its own
listener, and every forward counts a hop (``micro-hops``): past eight, the call is refused
with 508, so even a loop through two servers ends at once.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tests.security._tenant import Tenant

from micro import errors
from micro.rpc.client import Client
from micro.testing import start_server


def register(tenant: Tenant, name: str, address: str) -> None:
    record = {
        "name": name,
        "version": "latest",
        "nodes": [{"id": f"{name}-1", "address": address}],
        "endpoints": [{"name": "Loop.Call"}],
        "options": {"ttl": 60, "domain": tenant.namespace},
    }
    done = tenant.micro("call", "registry", "Registry.Register", json.dumps(record))
    assert done.returncode == 0, done.stderr


def test_a_node_at_the_proxys_own_address_is_never_called(tenant: Tenant) -> None:
    port = tenant.server.proxy.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost", "0.0.0.0"):
        register(tenant, "loop", f"{host}:{port}")
    done = tenant.micro("call", "loop", "Loop.Call", "{}", timeout=30)
    assert done.returncode == 127, (done.stdout, done.stderr)
    assert "registered at the proxy's own address" in done.stderr


def test_a_loop_through_two_servers_ends_after_eight_hops(tenant: Tenant, tmp_path: Path) -> None:
    other = start_server(tmp_path / "other-home")
    try:
        # On the other server the same service points back at the first one: anonymous
        # calls (the default rule is public) go round and round.
        made = other.micro(
            "auth", "create", "account", "tadmin", "--namespace", tenant.namespace,
            "--secret", tenant.password, "--scopes", "admin",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        register(tenant, "loop", other.proxy)
        there = Tenant(other, tenant.namespace, "tadmin", tenant.password, tmp_path / "t2")
        there.home.mkdir()
        assert there.micro("user", "namespace", "set", tenant.namespace).returncode == 0
        assert (
            there.micro("login", "--username", "tadmin", "--password", tenant.password).returncode
            == 0
        )
        register(there, "loop", tenant.server.proxy)

        async def call() -> None:
            client = Client(
                proxy=tenant.server.proxy, metadata={"micro-namespace": tenant.namespace}
            )
            try:
                await client.call("loop", "Loop.Call", {}, timeout=20)
            finally:
                await client.close()

        with pytest.raises(errors.MicroError) as caught:
            asyncio.run(call())
        assert caught.value.code == 508, caught.value
        assert "going round in a loop" in caught.value.detail
    finally:
        other.stop()
