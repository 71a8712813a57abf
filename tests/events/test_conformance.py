"""The events conformance suite over memory, SQLite, and the RPC client talking to the
events service over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from micro.events.client import RPCStream
from micro.events.handler import Store as StoreHandler
from micro.events.handler import Stream as StreamHandler
from micro.events.memory import MemoryStream
from micro.events.sqlite import SQLiteStream
from micro.events.testing import StreamSuite
from micro.rpc import Client, Server, endpoints_of


class TestMemoryStream(StreamSuite):
    @pytest.fixture
    async def stream(self) -> AsyncIterator[MemoryStream]:
        stream = MemoryStream()
        yield stream
        await stream.close()


class TestSQLiteStream(StreamSuite):
    @pytest.fixture
    async def stream(self, tmp_path: Path) -> AsyncIterator[SQLiteStream]:
        stream = SQLiteStream(tmp_path / "events")
        yield stream
        await stream.close()


class TestRPCStream(StreamSuite):
    @pytest.fixture
    async def stream(self, tmp_path: Path) -> AsyncIterator[RPCStream]:
        backend = SQLiteStream(tmp_path / "events")
        server = Server()
        server.add(
            "events",
            [*endpoints_of(StreamHandler(backend)), *endpoints_of(StoreHandler(backend))],
        )
        address = await server.start("127.0.0.1:0")
        client = Client(proxy=str(address))
        yield RPCStream(client)
        await client.close()
        await server.stop(grace=1)
        await backend.close()
