"""Addresses, listening and connecting (TCP and Unix sockets), and the connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from micro import errors
from micro.rpc import Server, endpoints_of
from micro.wire import Address, Pool, frames, parse_address
from micro.wire.connection import Connection
from micro.wire.transport import connect, listen

BOUND = 10.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8081", Address(host="127.0.0.1", port=8081)),
        (":8081", Address(host="", port=8081)),
        ("localhost:0", Address(host="localhost", port=0)),
        ("[::1]:9000", Address(host="::1", port=9000)),
        (" 10.0.0.1:80 ", Address(host="10.0.0.1", port=80)),
        ("unix:/tmp/m.sock", Address(path="/tmp/m.sock")),
        ("unix:///tmp/m.sock", Address(path="/tmp/m.sock")),
        ("tls://example.com:443", Address(host="example.com", port=443, tls=True)),
        ("https://example.com:443", Address(host="example.com", port=443, tls=True)),
        ("tls://unix:/run/m.sock", Address(path="/run/m.sock", tls=True)),
    ],
)
def test_parse_address(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:8081", "[::1]:9000", "unix:/tmp/m.sock", "tls://h:1", "tls://unix:/x"],
)
def test_address_text_round_trips(text: str) -> None:
    assert str(parse_address(text)) == text


def test_default_port_fills_a_missing_one() -> None:
    assert parse_address("example.com", default_port=8081) == Address("example.com", 8081)
    assert parse_address("[::1]", default_port=1) == Address("::1", 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("example.com", "has no port"),
        ("host:http", "not a number"),
        ("host:70000", "out of range"),
        ("host:-1", "out of range"),
        ("unix:", "names no socket path"),
    ],
)
def test_bad_address_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_address(text)
    assert repr(text) in str(info.value)


class _Echo:
    async def say(self, text: str) -> str:
        return text


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    srv.add("echo", endpoints_of(_Echo()))
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


async def test_port_zero_binds_a_real_port(server: Server) -> None:
    assert server.address is not None
    assert server.address.host == "127.0.0.1"
    assert server.address.port > 0


async def test_connect_refused_is_a_connection_error_naming_the_address(server: Server) -> None:
    assert server.address is not None
    port = server.address.port
    await server.stop(grace=0)
    address = Address("127.0.0.1", port)
    with pytest.raises(errors.ConnectionError) as info:
        await connect(address, Connection)
    assert f"127.0.0.1:{port}" in info.value.detail
    assert info.value.code == 503


async def test_connect_to_a_missing_unix_socket_is_a_connection_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConnectionError, match="cannot connect"):
        await connect(Address(path=str(tmp_path / "nobody.sock")), Connection)


async def test_listen_on_unix_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    path.write_bytes(b"")  # what a crashed server leaves behind
    listener, bound = await listen(Address(path=str(path)), Connection)
    try:
        assert bound == Address(path=str(path))
        conn = await connect(bound, Connection)
        assert isinstance(conn, Connection)
        conn.close()
        await conn.wait_closed()
    finally:
        listener.close()
        await listener.wait_closed()


async def test_pool_shares_one_connection_per_address(server: Server) -> None:
    pool = Pool()
    address = str(server.address)
    try:
        async with asyncio.timeout(BOUND):
            conns = await asyncio.gather(*(pool.get(address) for _ in range(20)))
        assert all(c is conns[0] for c in conns)
        assert pool.get_nowait(address) is conns[0]
    finally:
        await pool.close()
    assert conns[0].closed
    assert pool.get_nowait(address) is None


async def test_pool_drops_a_dead_connection_and_dials_again(server: Server) -> None:
    pool = Pool()
    address = str(server.address)
    try:
        async with asyncio.timeout(BOUND):
            first = await pool.get(address)
            first.abort(errors.ConnectionError("test", "killed"))
            await first.wait_closed()
            assert pool.get_nowait(address) is None
            second = await pool.get(address)
            header = frames.RequestHeader("echo", "_Echo.Say", "application/json")
            assert await second.unary(header, b'"hi"', timeout=BOUND) == b'"hi"'
        assert second is not first
    finally:
        await pool.close()


async def test_pool_reports_a_refused_dial_to_every_waiter(server: Server) -> None:
    assert server.address is not None
    address = str(server.address)
    await server.stop(grace=0)
    pool = Pool()
    async with asyncio.timeout(BOUND):
        results = await asyncio.gather(
            *(pool.get(address) for _ in range(3)), return_exceptions=True
        )
    assert all(isinstance(r, errors.ConnectionError) for r in results)


async def test_call_on_a_closed_connection_fails_at_once(server: Server) -> None:
    pool = Pool()
    conn = await pool.get(str(server.address))
    conn.close()
    await conn.wait_closed()
    header = frames.RequestHeader("echo", "_Echo.Say")
    with pytest.raises(errors.ConnectionError):
        await conn.unary(header, b"", timeout=None)
    with pytest.raises(errors.ConnectionError):
        conn.open_stream(header, None)
