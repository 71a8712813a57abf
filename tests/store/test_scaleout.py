"""What the PostgreSQL and Redis stores promise beyond the conformance suite: a server
that is down is a clear 503 naming it, bad input never reaches the server, expired
records are swept, and the plugins read their address from the settings."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from tests._support import backend_missing, free_port, require_postgres, require_redis
from tests.store.test_conformance import delete_prefix, drop_schema

from micro import errors
from micro.server import plugins
from micro.settings import Settings
from micro.store.base import MAX_VALUE_BYTES, Record, Store


def _postgres(address: str) -> Store:
    from micro.store.postgres import PostgresStore

    return PostgresStore(address, connect_timeout=2)


def _redis(address: str) -> Store:
    from micro.store.redis import RedisStore

    return RedisStore(address, connect_timeout=2)


def _need(name: str) -> None:
    """The backend's SDK, or skip (fail where every backend is required)."""
    module = {"postgres": "asyncpg", "redis": "redis"}[name]
    try:
        importlib.import_module(module)
    except ImportError:
        backend_missing(f"{module} is not installed (the {name!r} extra)")


DOWN: list[tuple[str, str, Callable[[str], Store]]] = [
    ("postgres", "postgresql://micro:s3cret@127.0.0.1:{port}/test", _postgres),
    ("redis", "redis://:s3cret@127.0.0.1:{port}/0", _redis),
]


@pytest.fixture(params=DOWN, ids=[name for name, _, _ in DOWN])
async def down(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Store, str]]:
    """A store pointed at a closed port, and that port."""
    name, template, make = request.param
    _need(name)
    port = free_port()
    store = make(template.format(port=port))
    yield store, f"127.0.0.1:{port}"
    await store.close()


async def test_a_server_that_is_down_is_a_clear_503(down: tuple[Store, str]) -> None:
    store, where = down
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.write(Record(key="k", value=b"v"), database="d", table="t"),
        lambda: store.read("k", database="d", table="t"),
        lambda: store.read("k", database="d", table="t", prefix=True),
        lambda: store.list(database="d", table="t"),
        lambda: store.delete("k", database="d", table="t"),
        lambda: store.tables("d"),
        lambda: store.databases(),
    ]
    for call in calls:
        with pytest.raises(errors.ServiceUnavailable) as caught:
            await call()
        assert type(caught.value) is errors.ServiceUnavailable
        detail = caught.value.detail
        assert where in detail
        assert "not reachable: connection refused" in detail
        assert "s3cret" not in detail  # the password is never shown


async def test_bad_input_is_rejected_before_the_server(down: tuple[Store, str]) -> None:
    # The server is down: a 400/413 (not a 503) shows the server was never asked.
    store, _ = down
    with pytest.raises(errors.PayloadTooLarge):
        await store.write(Record(key="k", value=b"x" * (MAX_VALUE_BYTES + 1)))
    with pytest.raises(errors.BadRequest):
        await store.write(Record(key="k", value=b"v"), database="bad name", table="t")
    with pytest.raises(errors.BadRequest):
        await store.write(Record(key="k", value=b"v"), database="d", table="'; DROP TABLE x")
    with pytest.raises(errors.BadRequest):
        await store.write(Record(key="", value=b"v"))
    with pytest.raises(errors.BadRequest):
        await store.read("", database="d", table="t")
    with pytest.raises(errors.BadRequest):
        await store.list(database="d", table="t", order="sideways")  # type: ignore[arg-type]
    with pytest.raises(errors.BadRequest):
        await store.tables("../etc")


@pytest.fixture
async def postgres() -> AsyncIterator[Any]:
    from micro.store.postgres import PostgresStore

    address = await require_postgres()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(address, schema=schema)
    yield store
    await store.close()
    await drop_schema(address, schema)


@pytest.fixture
async def redis_store() -> AsyncIterator[Any]:
    from micro.store.redis import RedisStore

    address = await require_redis()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    store = RedisStore(address, prefix=prefix)
    yield store
    await store.close()
    await delete_prefix(address, prefix)


async def _count(store: Any, sql: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(store.address)
    try:
        value: int = await conn.fetchval(sql.format(schema=f'"{store.schema}"'))
        return value
    finally:
        await conn.close()


async def test_postgres_sweep_and_reads_delete_expired_rows(postgres: Any) -> None:
    for key in ("a", "b"):
        await postgres.write(Record(key=key, value=b"x", expiry=0.2), database="d", table="t")
    await postgres.write(Record(key="kept", value=b"y"), database="d", table="t")
    await asyncio.sleep(0.3)  # the expiry is a point in time; nothing else to await
    with pytest.raises(errors.NotFound):
        await postgres.read("a", database="d", table="t")
    assert await _count(postgres, "SELECT count(*) FROM {schema}.records") == 2
    assert await postgres.sweep() == 1
    assert await _count(postgres, "SELECT count(*) FROM {schema}.records") == 1


async def test_postgres_rejects_text_it_cannot_store(postgres: Any) -> None:
    with pytest.raises(errors.BadRequest, match="cannot store"):
        await postgres.write(Record(key="nul\x00byte", value=b"x"), database="d", table="t")
    await postgres.write(Record(key="fine", value=b"x"), database="d", table="t")
    assert await postgres.list(database="d", table="t") == ["fine"]


async def test_redis_sweep_drops_expired_keys_from_the_index(redis_store: Any) -> None:
    import redis.asyncio

    for key in ("a", "b"):
        await redis_store.write(Record(key=key, value=b"x", expiry=0.2), database="d", table="t")
    await redis_store.write(Record(key="kept", value=b"y"), database="d", table="t")
    client = redis.asyncio.Redis.from_url(redis_store.address)
    index = f"{redis_store.prefix}:{{d:t}}:i"
    try:
        assert await client.zcard(index) == 3
        await asyncio.sleep(0.3)  # the expiry is a point in time; nothing else to await
        assert await redis_store.sweep() == 2
        assert await client.zrange(index, 0, -1) == [b"kept"]
        assert await client.exists(f"{redis_store.prefix}:{{d:t}}:r:a") == 0
    finally:
        await client.aclose()


async def _read_through_a_lost_connection(store: Any) -> list[object]:
    """Read a record three times; a lost connection may fail one read, cleanly."""
    outcomes: list[object] = []
    for _ in range(3):
        try:
            [record] = await store.read("k", database="d", table="t")
            outcomes.append(record.value)
        except errors.ServiceUnavailable as exc:
            outcomes.append(exc.detail)
    return outcomes


async def test_postgres_gets_over_lost_connections(postgres: Any) -> None:
    import asyncpg

    await postgres.write(Record(key="k", value=b"v"), database="d", table="t")
    conn = await asyncpg.connect(postgres.address)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            f"micro-store/{postgres.schema}",
        )
    finally:
        await conn.close()
    assert killed >= 1
    outcomes = await _read_through_a_lost_connection(postgres)
    assert outcomes[1:] == [b"v", b"v"]


async def test_redis_gets_over_lost_connections(redis_store: Any) -> None:
    import redis.asyncio

    await redis_store.write(Record(key="k", value=b"v"), database="d", table="t")
    client = redis.asyncio.Redis.from_url(redis_store.address)
    try:
        mine = [
            c["id"]
            for c in await client.client_list()
            if c["name"] == f"micro-store/{redis_store.prefix}"
        ]
        for client_id in mine:
            await client.client_kill_filter(_id=client_id)
    finally:
        await client.aclose()
    assert mine
    outcomes = await _read_through_a_lost_connection(redis_store)
    assert outcomes[1:] == [b"v", b"v"]


@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_plugins_need_an_address(name: str, tmp_path: Any) -> None:
    _need(name)
    with pytest.raises(ValueError, match="MICRO_STORE_ADDRESS"):
        plugins.create("store", name, Settings(home=tmp_path))
    with pytest.raises(ValueError, match="MICRO_STORE_ADDRESS"):
        plugins.create("store", name, Settings(home=tmp_path, store_address="nats://x:1"))


async def test_plugins_use_the_address(tmp_path: Any) -> None:
    address = await require_postgres()
    store = plugins.create("store", "postgres", Settings(home=tmp_path, store_address=address))
    try:
        assert (store.address, store.schema) == (address, "micro")
    finally:
        await store.close()
    address = await require_redis()
    store = plugins.create("store", "redis", Settings(home=tmp_path, store_address=address))
    try:
        assert (store.address, store.prefix) == (address, "micro")
    finally:
        await store.close()
