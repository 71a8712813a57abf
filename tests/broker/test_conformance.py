"""The broker conformance suite over every implementation: memory, NATS and Redis (real
servers on loopback), and the RPC client talking to the broker service over a real socket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from tests._support import require_nats, require_redis

from micro.broker.client import RPCBroker
from micro.broker.handler import Broker as BrokerHandler
from micro.broker.memory import MemoryBroker
from micro.broker.testing import BrokerSuite
from micro.rpc import Client, Server, endpoints_of

if TYPE_CHECKING:
    from micro.broker.nats import NatsBroker
    from micro.broker.redis import RedisBroker


class TestMemoryBroker(BrokerSuite):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[MemoryBroker]:
        broker = MemoryBroker()
        yield broker
        await broker.close()


class TestNatsBroker(BrokerSuite):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[NatsBroker]:
        from micro.broker.nats import NatsBroker

        address = await require_nats()
        broker = NatsBroker(address, prefix=f"test-{uuid.uuid4().hex[:12]}")
        yield broker
        await broker.close()


class TestRedisBroker(BrokerSuite):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[RedisBroker]:
        from micro.broker.redis import RedisBroker

        address = await require_redis()
        broker = RedisBroker(address, prefix=f"test-{uuid.uuid4().hex[:12]}")
        yield broker
        await broker.close()


class TestRPCBroker(BrokerSuite):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[RPCBroker]:
        backend = MemoryBroker()
        server = Server()
        server.add("broker", endpoints_of(BrokerHandler(backend)))
        address = await server.start("127.0.0.1:0")
        client = Client(proxy=str(address))
        yield RPCBroker(client)
        await client.close()
        await server.stop(grace=1)
        await backend.close()
