"""The registry conformance suite over every implementation: memory, and the RPC client
talking to the registry service over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from micro.registry.client import RPCRegistry
from micro.registry.handler import Registry as RegistryHandler
from micro.registry.memory import MemoryRegistry
from micro.registry.testing import RegistrySuite
from micro.rpc import Client, Server, endpoints_of


class TestMemoryRegistry(RegistrySuite):
    @pytest.fixture
    async def registry(self) -> AsyncIterator[MemoryRegistry]:
        registry = MemoryRegistry(reap_interval=0.05)
        yield registry
        await registry.close()


class TestRPCRegistry(RegistrySuite):
    @pytest.fixture
    async def registry(self) -> AsyncIterator[RPCRegistry]:
        backend = MemoryRegistry(reap_interval=0.05)
        server = Server()
        server.add("registry", endpoints_of(RegistryHandler(backend)))
        address = await server.start("127.0.0.1:0")
        client = Client(proxy=str(address))
        yield RPCRegistry(client)
        await client.close()
        await server.stop(grace=1)
        await backend.close()
