"""Issue 14, item 16: one tenant cannot fill the registry.

Before, a tenant registered 10,000 services, and its namespace's listing grew past the
wire's frame limit. Now a namespace holds at most ``MICRO_REGISTRY_MAX_SERVICES``
services (1,000 by default), a version at most 256 nodes and a registration at most
256 KiB; the limits answer 429 and 413 saying which, and other namespaces are untouched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.security._tenant import make_tenant

from micro import errors
from micro.registry.base import Endpoint, Node, Service
from micro.registry.client import RPCRegistry
from micro.rpc.client import Client
from micro.testing import start_server


def test_a_namespace_has_a_quota_of_services_nodes_and_bytes(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", env={"MICRO_REGISTRY_MAX_SERVICES": "20"})
    try:
        tenant = make_tenant(server, tmp_path)
        token = tenant.token()

        async def attack() -> None:
            client = Client(
                proxy=server.proxy,
                metadata={"authorization": f"Bearer {token}", "micro-namespace": tenant.namespace},
            )
            registry = RPCRegistry(client)
            ns = tenant.namespace

            def service(name: str, nodes: int = 1, schema: int = 0) -> Service:
                return Service(
                    name=name,
                    nodes=[Node(id=f"{name}-{i}", address="127.0.0.1:1") for i in range(nodes)],
                    endpoints=[Endpoint(name="X.Y", request={"description": "x" * schema})],
                )

            try:
                for i in range(20):
                    await registry.register(service(f"svc{i}"), ttl=60, domain=ns)
                with pytest.raises(errors.MicroError) as caught:
                    await registry.register(service("svc20"), ttl=60, domain=ns)
                assert caught.value.code == 429
                assert "MICRO_REGISTRY_MAX_SERVICES" in caught.value.detail
                await registry.register(service("svc3"), ttl=60, domain=ns)  # a refresh is fine
                assert len(await registry.list_services(domain=ns)) == 20
                with pytest.raises(errors.MicroError) as caught:
                    await registry.register(service("svc4", nodes=300), ttl=60, domain=ns)
                assert caught.value.code == 429
                with pytest.raises(errors.PayloadTooLarge):
                    await registry.register(service("svc5", schema=300_000), ttl=60, domain=ns)
            finally:
                await client.close()

        asyncio.run(attack())
        # The platform's own namespace is not the tenant's to fill.
        assert "registry" in server.micro("services").stdout
    finally:
        server.stop()
