"""A native listener's limits against real sockets (micro.wire.guard): frames in progress
share a budget, late frames and silent or idle connections are closed, and clients' pools
carry on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from tests.rpc.greeter_service import WatchedServer

from micro import codec
from micro.rpc import Client, endpoints_of
from micro.wire import frames

BOUND = 30.0
MIB = 1024 * 1024
BUDGET = 17 * MIB
"""Room for one whole frame and a little more."""
READ = 256 * 1024
"""The most one socket read takes in (asyncio's and uvloop's buffer)."""


class Sink:
    async def size(self, data: bytes) -> int:
        return len(data)


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("MICRO_HOME", str(tmp_path))
    monkeypatch.setenv("MICRO_WIRE_FRAME_TIMEOUT", "0.5")
    monkeypatch.setenv("MICRO_WIRE_IDLE_TIMEOUT", "0.5")
    monkeypatch.setenv("MICRO_WIRE_READ_BUDGET", str(BUDGET))


@pytest.fixture
async def server(limits: None) -> AsyncIterator[WatchedServer]:
    srv = WatchedServer()
    srv.add("sink", endpoints_of(Sink()))
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def patient_server(
    limits: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WatchedServer]:
    """As :func:`server`, with deadlines no step of a test comes near."""
    monkeypatch.setenv("MICRO_WIRE_FRAME_TIMEOUT", str(BOUND))
    monkeypatch.setenv("MICRO_WIRE_IDLE_TIMEOUT", str(BOUND))
    srv = WatchedServer()
    srv.add("sink", endpoints_of(Sink()))
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the server never reached the expected state")


async def _connect(server: WatchedServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert server.address is not None
    return await asyncio.open_connection("127.0.0.1", server.address.port)


async def _read_frame(reader: asyncio.StreamReader) -> frames.Frame:
    decoder = frames.FrameDecoder()
    while True:
        data = await reader.read(65536)
        assert data, "the server closed the connection instead of answering"
        got = decoder.feed(data)
        if got:
            return got[0]


def _request(stream_id: int, size: int) -> bytes:
    header = frames.RequestHeader("sink", "Sink.Size", codec.MSGPACK)
    body = codec.codec_for(codec.MSGPACK).encode(b"x" * size)
    return frames.encode_request(stream_id, header, body, frames.END_STREAM)


async def test_frames_in_progress_hold_at_most_the_budget(server: WatchedServer) -> None:
    async with asyncio.timeout(BOUND):
        writers = []
        for _ in range(6):  # each announces 15 MiB and sends 2 MiB of it
            _, writer = await _connect(server)
            writer.write(_request(1, 15 * MIB)[: 2 * MIB])
            writers.append(writer)
        await server.wait_until(lambda: len(server.accepted) == 6)
        await _until(lambda: sum(conn.waiting for conn in server.accepted) == 5)
        guard = server.accepted[0].guard
        assert guard is not None
        assert guard.held <= BUDGET
        held = sum(conn._decoder.pending for conn in server.accepted)
        assert held <= 2 * MIB + 5 * READ  # the frame with room, and one read of each other
        for writer in writers:
            writer.close()


async def test_a_frame_waits_for_room_then_arrives(server: WatchedServer) -> None:
    client = Client(proxy=str(server.address), timeout=BOUND)
    other = Client(proxy=str(server.address), timeout=BOUND)
    try:
        async with asyncio.timeout(BOUND):
            sizes = await asyncio.gather(
                client.call("sink", "Sink.Size", b"x" * (10 * MIB)),
                other.call("sink", "Sink.Size", b"y" * (10 * MIB)),
            )
        assert sizes == [10 * MIB, 10 * MIB]
    finally:
        await client.close()
        await other.close()


async def test_frames_that_fit_pass_one_that_waits_and_it_gets_room_in_turn(
    patient_server: WatchedServer,
) -> None:
    server = patient_server
    async with asyncio.timeout(BOUND):
        holder_reader, holder = await _connect(server)
        whole = _request(1, 15 * MIB)
        holder.write(whole[:MIB])  # holds 15 MiB of the 17
        await server.wait_until(lambda: len(server.accepted) == 1)
        await _until(lambda: server.accepted[0].reserved > 0)
        big_reader, big = await _connect(server)
        big.write(whole[:MIB])  # waits: no room
        await server.wait_until(lambda: len(server.accepted) == 2)
        await _until(lambda: server.accepted[1].waiting)
        small_reader, small = await _connect(server)
        small.write(_request(1, MIB))  # fits: answered while the big one waits
        assert (await _read_frame(small_reader)).kind == frames.RESPONSE
        assert server.accepted[1].waiting
        holder.write(whole[MIB:])  # the first frame completes: the waiting one gets room
        assert (await _read_frame(holder_reader)).kind == frames.RESPONSE
        big.write(whole[MIB:])
        assert (await _read_frame(big_reader)).kind == frames.RESPONSE
        for writer in (holder, big, small):
            writer.close()


async def test_a_frame_that_stops_arriving_is_dropped_and_its_room_freed(
    server: WatchedServer,
) -> None:
    async with asyncio.timeout(BOUND):
        reader, writer = await _connect(server)
        writer.write(_request(1, 15 * MIB)[:MIB])
        await writer.drain()
        assert await reader.read() == b""  # the server hung up on the late frame
        writer.close()
        guard = server.accepted[0].guard
        assert guard is not None
        await server.wait_until(lambda: server.lost_count == 1)
        assert guard.held == 0


async def test_a_connection_that_says_nothing_is_closed(server: WatchedServer) -> None:
    async with asyncio.timeout(BOUND):
        reader, writer = await _connect(server)
        assert await reader.read() == b""
        writer.close()


async def test_an_idle_connection_is_closed_and_the_pool_dials_again(
    server: WatchedServer,
) -> None:
    client = Client(proxy=str(server.address))
    try:
        async with asyncio.timeout(BOUND):
            assert await client.call("sink", "Sink.Size", b"abc") == 3
            await server.wait_until(lambda: server.lost_count == 1)  # closed as idle
            assert await client.call("sink", "Sink.Size", b"abcd") == 4
        assert len(server.accepted) == 2
    finally:
        await client.close()


async def test_told_to_go_a_pool_finishes_its_calls_then_closes_and_dials_again() -> None:
    """What the listener's GOAWAY promises: calls the caller sent before reading it are
    still answered, none after it are sent on that connection."""
    requests: list[int] = []
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = frames.FrameDecoder()
        pending: list[frames.Frame] = []
        while not pending:
            pending += decoder.feed(await reader.read(65536))
        requests.append(pending[0].stream)
        writer.write(frames.encode_frame(0, frames.GOAWAY))  # the call is still in flight
        answer = codec.codec_for(codec.MSGPACK).encode(len(requests))
        writer.write(frames.encode_frame(pending[0].stream, frames.RESPONSE, 0, answer))
        assert await reader.read() == b""  # the caller closes once its call is done
        closed.set()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    address = f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    client = Client(proxy=address)
    try:
        async with asyncio.timeout(BOUND):
            assert await client.call("sink", "Sink.Size", b"") == 1
            await closed.wait()
            assert await client.call("sink", "Sink.Size", b"") == 2  # on a new connection
    finally:
        await client.close()
        listener.close()
