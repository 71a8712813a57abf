"""The config conformance suite over every implementation: the tree on a memory store,
and the RPC client talking to the config service over a real socket."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from micro.config.client import RPCConfig
from micro.config.handler import Config as ConfigHandler
from micro.config.secrets import SecretBox
from micro.config.store import StoreConfig
from micro.config.testing import ConfigSuite
from micro.rpc import Client, Server, endpoints_of
from micro.store.memory import MemoryStore


class TestStoreConfig(ConfigSuite):
    @pytest.fixture
    async def config(self) -> AsyncIterator[StoreConfig]:
        config = StoreConfig(MemoryStore(), secrets=SecretBox(os.urandom(32)))
        yield config
        await config.close()


class TestRPCConfig(ConfigSuite):
    @pytest.fixture
    async def config(self) -> AsyncIterator[RPCConfig]:
        backend = StoreConfig(MemoryStore(), secrets=SecretBox(os.urandom(32)))
        server = Server()
        server.add("config", endpoints_of(ConfigHandler(backend)))
        address = await server.start("127.0.0.1:0")
        client = Client(proxy=str(address))
        yield RPCConfig(client)
        await client.close()
        await server.stop(grace=1)
        await backend.close()
