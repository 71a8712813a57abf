"""The store conformance suite over every implementation: memory, SQLite, PostgreSQL and
Redis (real servers on loopback), and the RPC client talking to the store service over a
real socket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests._support import require_postgres, require_redis

from micro.rpc import Client, Server, endpoints_of
from micro.store.client import RPCStore
from micro.store.handler import Store as StoreHandler
from micro.store.memory import MemoryStore
from micro.store.sqlite import SQLiteStore
from micro.store.testing import StoreSuite

if TYPE_CHECKING:
    from micro.store.postgres import PostgresStore
    from micro.store.redis import RedisStore


class TestMemoryStore(StoreSuite):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        store = MemoryStore()
        yield store
        await store.close()


class TestSQLiteStore(StoreSuite):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "store")
        yield store
        await store.close()


async def drop_schema(address: str, schema: str) -> None:
    """Remove a test's PostgreSQL schema and everything in it."""
    import asyncpg

    conn = await asyncpg.connect(address)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def delete_prefix(address: str, prefix: str) -> None:
    """Remove every Redis key a test's store made."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(address)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class TestPostgresStore(StoreSuite):
    @pytest.fixture
    async def store(self) -> AsyncIterator[PostgresStore]:
        from micro.store.postgres import PostgresStore

        address = await require_postgres()
        schema = f"test_{uuid.uuid4().hex[:12]}"
        store = PostgresStore(address, schema=schema)
        yield store
        await store.close()
        await drop_schema(address, schema)


class TestRedisStore(StoreSuite):
    @pytest.fixture
    async def store(self) -> AsyncIterator[RedisStore]:
        from micro.store.redis import RedisStore

        address = await require_redis()
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        store = RedisStore(address, prefix=prefix)
        yield store
        await store.close()
        await delete_prefix(address, prefix)


class TestRPCStore(StoreSuite):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[RPCStore]:
        backend = SQLiteStore(tmp_path / "store")
        server = Server()
        server.add("store", endpoints_of(StoreHandler(backend)))
        address = await server.start("127.0.0.1:0")
        client = Client(proxy=str(address))
        yield RPCStore(client)
        await client.close()
        await server.stop(grace=1)
        await backend.close()
