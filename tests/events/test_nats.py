"""The NATS JetStream event stream: the conformance suite against a real server (skipped
without one, failed with MICRO_REQUIRE_BACKENDS=1), plus what only it has."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests._support import free_port, require_nats

from micro import errors
from micro.events.testing import StreamSuite, next_delivery, unique
from micro.settings import Settings

pytest.importorskip("nats")

from micro.events.nats import NatsStream


async def _stream(**options: object) -> NatsStream:
    url = await require_nats()
    return NatsStream(url, prefix=f"t-{uuid.uuid4().hex[:12]}", **options)  # type: ignore[arg-type]


async def _cleanup(stream: NatsStream) -> None:
    await stream.delete_all()
    await stream.close()


class TestNatsStream(StreamSuite):
    @pytest.fixture
    async def stream(self) -> AsyncIterator[NatsStream]:
        stream = await _stream()
        yield stream
        await _cleanup(stream)


async def test_redelivery_after_ack_wait_runs_out_goes_dead() -> None:
    stream = await _stream()
    try:
        ns, topic = unique("ns"), unique()
        await stream.publish(topic, b"slow", namespace=ns)
        async with stream.consume(
            topic, group="g", offset=1, auto_ack=False, ack_wait=0.3, retry_limit=0, namespace=ns
        ) as consumer:
            first = await next_delivery(consumer)
            assert first.attempt == 1  # never acked: after its ack wait it is dead
            for _ in range(50):
                dead = await stream.read(topic + ".dead", namespace=ns)
                if dead:
                    break
                await asyncio.sleep(0.1)
            assert [e.payload for e in dead] == [b"slow"]
            assert dead[0].metadata == {"micro-topic": topic, "micro-sequence": "1"}
    finally:
        await _cleanup(stream)


async def test_retention_by_count() -> None:
    stream = await _stream(max_events=3)
    try:
        ns, topic = unique("ns"), unique()
        for i in range(5):
            await stream.publish(topic, str(i).encode(), namespace=ns)
        assert [e.sequence for e in await stream.read(topic, namespace=ns)] == [3, 4, 5]
        assert [e.sequence for e in await stream.read(topic, offset=1, namespace=ns)] == [3, 4, 5]
    finally:
        await _cleanup(stream)


async def test_namespaces_with_odd_characters_do_not_collide() -> None:
    stream = await _stream()
    try:
        await stream.publish("a.b", b"1", namespace="x")
        await stream.publish("b", b"2", namespace="x.a")
        await stream.publish("a_2Eb", b"3", namespace="x")
        assert await stream.topics(namespace="x") == ["a.b", "a_2Eb"]
        assert await stream.topics(namespace="x.a") == ["b"]
        assert [e.payload for e in await stream.read("a.b", namespace="x")] == [b"1"]
    finally:
        await _cleanup(stream)


async def test_a_server_that_is_down_is_unavailable() -> None:
    address = f"nats://127.0.0.1:{free_port()}"
    stream = NatsStream(address, connect_timeout=1)
    with pytest.raises(errors.ServiceUnavailable, match=r"127\.0\.0\.1"):
        await stream.publish("t", b"x")
    with pytest.raises(errors.ServiceUnavailable, match=r"127\.0\.0\.1"):
        await stream.read("t")
    consumer = stream.consume("t", group="g")
    with pytest.raises(errors.ServiceUnavailable, match=r"127\.0\.0\.1"):
        await next_delivery(consumer)
    await consumer.stop()
    await stream.close()


def test_from_settings(tmp_path: Path) -> None:
    stream = NatsStream.from_settings(
        Settings(home=tmp_path, events_address="nats://127.0.0.1:4222", backend_prefix="p")
    )
    assert (stream.address, stream.prefix) == ("nats://127.0.0.1:4222", "p")
    with pytest.raises(ValueError, match="MICRO_EVENTS_ADDRESS"):
        NatsStream.from_settings(Settings(home=tmp_path, events_address="redis://x"))
