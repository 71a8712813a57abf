"""Connections of the native wire against raw sockets: a misbehaving peer loses its own
connection and nothing else; the frames a server answers with are the documented ones."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from tests.rpc.greeter_service import WatchedServer

from micro import codec, errors
from micro.rpc import Client, endpoints_of
from micro.wire import frames
from micro.wire.stream import DEFAULT_WINDOW

BOUND = 10.0
"""Upper bound on any wait: a hang fails the test instead of stalling the run."""


class Echo:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def say(self, text: str) -> str:
        return text

    async def wait(self, text: str) -> str:
        self.started.set()
        await self.gate.wait()
        return text

    async def hold(self, numbers: AsyncIterator[int]) -> int:
        await self.gate.wait()
        return sum([n async for n in numbers])


@pytest.fixture
async def echo() -> Echo:
    return Echo()


@pytest.fixture
async def server(echo: Echo) -> AsyncIterator[WatchedServer]:
    srv = WatchedServer()
    srv.add("echo", endpoints_of(echo))
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def client(server: WatchedServer) -> AsyncIterator[Client]:
    cl = Client(proxy=str(server.address))
    yield cl
    await cl.close()


async def _raw(server: WatchedServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert server.address is not None
    return await asyncio.open_connection("127.0.0.1", server.address.port)


def _request(
    stream_id: int, endpoint: str, body: bytes | None, flags: int = frames.END_STREAM
) -> bytes:
    header = frames.RequestHeader("echo", endpoint, codec.MSGPACK)
    return frames.encode_request(stream_id, header, body, flags)


async def _read_frame(reader: asyncio.StreamReader) -> frames.Frame:
    decoder = frames.FrameDecoder()
    for _ in range(1000):
        data = await reader.read(65536)
        assert data, "the server closed the connection instead of answering"
        got = decoder.feed(data)
        if got:
            return got[0]
    raise AssertionError("no frame arrived")


async def test_a_raw_socket_speaks_the_documented_frames(server: WatchedServer) -> None:
    reader, writer = await _raw(server)
    try:
        async with asyncio.timeout(BOUND):
            writer.write(_request(1, "Echo.Say", codec.codec_for(codec.MSGPACK).encode("hi")))
            frame = await _read_frame(reader)
    finally:
        writer.close()
    assert frame.stream == 1
    assert frame.kind == frames.RESPONSE
    assert codec.codec_for(codec.MSGPACK).decode(frame.payload) == "hi"


async def test_garbage_closes_that_connection_and_no_other(
    server: WatchedServer, client: Client
) -> None:
    async with asyncio.timeout(BOUND):
        assert await client.call("echo", "Echo.Say", "before") == "before"
        reader, writer = await _raw(server)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await reader.read() == b""  # EOF: the server hung up on the garbage
        writer.close()
        await server.wait_until(lambda: server.lost_count == 1)
        assert await client.call("echo", "Echo.Say", "after") == "after"
    assert len(server.accepted) == 2


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(frames.HEADER.pack(0, 1, 99, 0), id="unknown-kind"),
        pytest.param(frames.HEADER.pack(frames.DEFAULT_MAX_FRAME + 1, 1, 3, 0), id="too-long"),
    ],
)
async def test_invalid_frame_header_closes_the_connection(
    server: WatchedServer, client: Client, bad: bytes
) -> None:
    async with asyncio.timeout(BOUND):
        reader, writer = await _raw(server)
        writer.write(bad)
        assert await reader.read() == b""
        writer.close()
        assert await client.call("echo", "Echo.Say", "still here") == "still here"


async def test_truncated_frame_then_close_harms_no_other_connection(
    server: WatchedServer, client: Client, echo: Echo
) -> None:
    async with asyncio.timeout(BOUND):
        # A call in flight on the good connection while the bad one comes and goes.
        in_flight = asyncio.create_task(client.call("echo", "Echo.Wait", "patient"))
        await echo.started.wait()
        _reader, writer = await _raw(server)
        whole = _request(1, "Echo.Say", codec.codec_for(codec.MSGPACK).encode("x" * 100))
        writer.write(whole[: len(whole) // 2])
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await server.wait_until(lambda: server.lost_count == 1)
        echo.gate.set()
        assert await in_flight == "patient"
        assert await client.call("echo", "Echo.Say", "fine") == "fine"


async def test_duplicate_request_on_an_open_stream_is_a_protocol_error(
    server: WatchedServer, echo: Echo
) -> None:
    async with asyncio.timeout(BOUND):
        reader, writer = await _raw(server)
        body = codec.codec_for(codec.MSGPACK).encode("x")
        writer.write(_request(1, "Echo.Wait", body) + _request(1, "Echo.Wait", body))
        assert await reader.read() == b""
        writer.close()


async def test_malformed_request_header_fails_that_call_only(server: WatchedServer) -> None:
    async with asyncio.timeout(BOUND):
        reader, writer = await _raw(server)
        try:
            payload = struct.pack("!H", 3) + b"\xc1\xc1\xc1"  # 0xc1 is never valid msgpack
            writer.write(frames.encode_frame(1, frames.REQUEST, frames.END_STREAM, payload))
            frame = await _read_frame(reader)
            assert (frame.stream, frame.kind) == (1, frames.ERROR)
            assert isinstance(errors.from_json(frame.payload), errors.BadRequest)
            # The connection is still good for the next call.
            writer.write(_request(3, "Echo.Say", codec.codec_for(codec.MSGPACK).encode("ok")))
            frame = await _read_frame(reader)
            assert (frame.stream, frame.kind) == (3, frames.RESPONSE)
        finally:
            writer.close()


async def test_peer_sending_past_its_window_gets_an_error(
    server: WatchedServer, echo: Echo
) -> None:
    async with asyncio.timeout(BOUND):
        reader, writer = await _raw(server)
        try:
            header = frames.RequestHeader("echo", "Echo.Hold", codec.MSGPACK)
            data = frames.encode_request(1, header, None, frames.STREAMING)
            one = codec.codec_for(codec.MSGPACK).encode(1)
            data += frames.encode_frame(1, frames.MESSAGE, 0, one) * (DEFAULT_WINDOW + 1)
            writer.write(data)
            frame = await _read_frame(reader)
            assert (frame.stream, frame.kind) == (1, frames.ERROR)
            error = errors.from_json(frame.payload)
            assert isinstance(error, errors.BadRequest)
            assert "window" in error.detail
        finally:
            writer.close()


async def test_request_cancelled_in_the_same_packet_leaves_nothing_in_flight(
    server: WatchedServer, client: Client
) -> None:
    async with asyncio.timeout(BOUND):
        reader, writer = await _raw(server)
        body = codec.codec_for(codec.MSGPACK).encode("x")
        unary = _request(1, "Echo.Wait", body)
        stream = _request(3, "Echo.Hold", None, frames.STREAMING) + frames.encode_frame(
            3, frames.END
        )
        writer.write(
            unary
            + frames.encode_frame(1, frames.CANCEL)
            + stream
            + frames.encode_frame(3, frames.CANCEL)
        )
        await writer.drain()
        # A later call on the same connection is a barrier: both cancels have been handled.
        writer.write(_request(5, "Echo.Say", body))
        frame = await _read_frame(reader)
        assert (frame.stream, frame.kind) == (5, frames.RESPONSE)
        writer.close()
        # Nothing is in flight any more, so a graceful stop has nothing to wait for.
        await server.stop(grace=BOUND * 10)
