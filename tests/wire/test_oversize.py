"""What is too big for the wire fails its own call, never the connection it shares:
a request or stream message over the frame limit is a 413 before a byte is written, an
answer over it goes out as a 413, and metadata over 64 KiB is a 400."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.rpc.greeter_service import WatchedServer

from micro import errors
from micro.rpc import Client, endpoints_of
from micro.wire import frames

BOUND = 30.0
LIMIT = frames.DEFAULT_MAX_FRAME


class Big:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0
        self.arrived = asyncio.Event()

    async def wait(self, text: str) -> str:
        self.started += 1
        self.arrived.set()
        await self.gate.wait()
        return text

    async def size(self, data: bytes) -> int:
        return len(data)

    async def answer(self, size: int) -> bytes:
        return b"x" * size

    async def count(self, data: AsyncIterator[bytes]) -> int:
        return sum([len(d) async for d in data])


@pytest.fixture
async def big() -> Big:
    return Big()


@pytest.fixture
async def server(big: Big) -> AsyncIterator[WatchedServer]:
    srv = WatchedServer()
    srv.add("big", endpoints_of(big))
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def client(server: WatchedServer) -> AsyncIterator[Client]:
    cl = Client(proxy=str(server.address))
    yield cl
    await cl.close()


async def _in_flight(client: Client, big: Big, n: int) -> list[asyncio.Task[str]]:
    calls = [asyncio.create_task(client.call("big", "Big.Wait", f"call {i}")) for i in range(n)]
    while big.started < n:
        big.arrived.clear()
        await big.arrived.wait()
    return calls


async def test_an_oversize_request_is_413_and_calls_in_flight_survive(
    server: WatchedServer, client: Client, big: Big
) -> None:
    async with asyncio.timeout(BOUND):
        calls = await _in_flight(client, big, 3)
        with pytest.raises(errors.PayloadTooLarge, match="over the frame limit"):
            await client.call("big", "Big.Size", b"x" * (LIMIT + 1))
        big.gate.set()
        assert await asyncio.gather(*calls) == ["call 0", "call 1", "call 2"]
        assert await client.call("big", "Big.Size", b"x" * 1000) == 1000
    assert len(server.accepted) == 1
    assert server.lost_count == 0


async def test_an_oversize_answer_is_413_for_its_call_only(
    server: WatchedServer, client: Client, big: Big
) -> None:
    async with asyncio.timeout(BOUND):
        calls = await _in_flight(client, big, 2)
        with pytest.raises(errors.PayloadTooLarge, match="the answer is"):
            await client.call("big", "Big.Answer", LIMIT + 10)
        big.gate.set()
        assert await asyncio.gather(*calls) == ["call 0", "call 1"]
    assert server.lost_count == 0


async def test_an_oversize_stream_message_ends_that_stream_with_413(
    server: WatchedServer, client: Client, big: Big
) -> None:
    async with asyncio.timeout(BOUND):
        calls = await _in_flight(client, big, 2)
        async with await client.stream("big", "Big.Count") as stream:
            await stream.send(b"x" * 100)
            with pytest.raises(errors.PayloadTooLarge):
                await stream.send(b"x" * (LIMIT + 1))
            with pytest.raises(errors.PayloadTooLarge):
                await stream.recv()
        big.gate.set()
        assert await asyncio.gather(*calls) == ["call 0", "call 1"]
    assert server.lost_count == 0


async def test_metadata_over_64_kib_is_a_400_before_sending(
    server: WatchedServer, client: Client
) -> None:
    async with asyncio.timeout(BOUND):
        with pytest.raises(errors.BadRequest, match="metadata is too large"):
            await client.call("big", "Big.Size", b"", metadata={"x-big": "a" * 70_000})
        assert await client.call("big", "Big.Size", b"abc") == 3
    assert server.lost_count == 0
