"""Records stored before versions existed keep working on every backend with a disk:
they read as version 1, a conditional write on them works, and no step rewrites data."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import msgspec
import pytest
from tests._support import require_postgres, require_redis
from tests.store.test_conformance import delete_prefix, drop_schema

from micro import errors
from micro.store.base import Record
from micro.store.sqlite import SQLiteStore


async def _check_legacy(store: object, database: str, table: str) -> None:
    from micro.store.base import Store

    assert isinstance(store, Store)
    [old] = await store.read("old", database=database, table=table)
    assert (old.value, old.version) == (b"v", 1)
    with pytest.raises(errors.Conflict):
        await store.write(Record("old", b"x"), database=database, table=table, if_version=2)
    await store.write(Record("old", b"w"), database=database, table=table, if_version=1)
    [old] = await store.read("old", database=database, table=table)
    assert (old.value, old.version) == (b"w", 2)


async def test_sqlite_table_without_versions(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    with sqlite3.connect(folder / "db.db") as conn:  # the layout before versions
        conn.execute(
            'CREATE TABLE "t:tab" (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, '
            "metadata TEXT, expires REAL) WITHOUT ROWID"
        )
        conn.execute("""INSERT INTO "t:tab" VALUES ('old', x'76', NULL, NULL)""")
    store = SQLiteStore(folder)
    try:
        await _check_legacy(store, "db", "tab")
        # A plain write (the batched path) counts on from the upgraded column too.
        await store.write(Record("old", b"y"), database="db", table="tab")
        [old] = await store.read("old", database="db", table="tab")
        assert old.version == 3
    finally:
        await store.close()


async def test_postgres_schema_without_versions() -> None:
    from micro.store.postgres import PostgresStore

    address = await require_postgres()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    first = PostgresStore(address, schema=schema)
    try:
        await first.write(Record("seed", b"s"), database="db", table="tab")
        await first.close()
        import asyncpg

        conn = await asyncpg.connect(address)
        try:  # back to the layout before versions, with a record in it
            await conn.execute(f'ALTER TABLE "{schema}".records DROP COLUMN version')
            await conn.execute(
                f'INSERT INTO "{schema}".records (database, "table", key, value) '
                "VALUES ('db', 'tab', 'old', 'v')"
            )
        finally:
            await conn.close()
        store = PostgresStore(address, schema=schema)
        try:
            await _check_legacy(store, "db", "tab")
        finally:
            await store.close()
    finally:
        await drop_schema(address, schema)


async def test_redis_record_without_version() -> None:
    import redis.asyncio

    from micro.store.redis import RedisStore

    address = await require_redis()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    client = redis.asyncio.Redis.from_url(address)
    store = RedisStore(address, prefix=prefix)
    try:
        base = f"{prefix}:{{db:tab}}:"
        # The record format before versions: msgpack [value, metadata, expires].
        await client.set(base + "r:old", msgspec.msgpack.encode([b"v", {}, 0]))
        await client.zadd(base + "i", {"old": 0})
        await _check_legacy(store, "db", "tab")
    finally:
        await store.close()
        await client.aclose()
        await delete_prefix(address, prefix)
