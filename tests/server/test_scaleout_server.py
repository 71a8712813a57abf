"""The whole platform on the scale-out stores: micro server with its store (and so its
config) on PostgreSQL and on Redis, driven by the real CLI and a real service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support import HELLOWORLD, require_postgres, require_redis

from micro.testing import MicroServerProcess, start_server


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _drop_prefix(url: str, prefix: str) -> None:
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["postgres", "redis"])
async def scaleout_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[MicroServerProcess]:
    kind = request.param
    url = await (require_postgres() if kind == "postgres" else require_redis())
    prefix = f"t{uuid.uuid4().hex[:12]}"
    server = start_server(
        tmp_path / "home",
        env={"MICRO_STORE": kind, "MICRO_STORE_ADDRESS": url, "MICRO_PREFIX": prefix},
    )
    try:
        yield server
    finally:
        server.stop()
        await (_drop_schema(url, prefix) if kind == "postgres" else _drop_prefix(url, prefix))


def _ok(server: MicroServerProcess, *args: str) -> str:
    out = server.micro(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_store_and_config_through_the_cli(scaleout_server: MicroServerProcess) -> None:
    _ok(scaleout_server, "store", "write", "greeting", "hello", "there")
    assert _ok(scaleout_server, "store", "read", "greeting") == "hello there\n"
    assert _ok(scaleout_server, "store", "list") == "greeting\n"
    _ok(scaleout_server, "config", "set", "db.port", "5432")
    _ok(scaleout_server, "config", "set", "db.password", "s3cret", "--secret")
    assert _ok(scaleout_server, "config", "get", "db.port") == "5432\n"
    shown = json.loads(_ok(scaleout_server, "config", "get", "db"))
    assert shown == {"password": "[secret]", "port": 5432}
    assert _ok(scaleout_server, "config", "get", "db.password", "--secret") == "s3cret\n"


async def test_a_service_runs_on_it(scaleout_server: MicroServerProcess) -> None:
    scaleout_server.start_service(HELLOWORLD, name="helloworld")
    out = _ok(scaleout_server, "call", "helloworld", "Helloworld.Call", '{"name":"PG"}')
    assert "Hello PG" in out
