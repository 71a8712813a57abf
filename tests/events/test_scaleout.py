"""The scale-out event streams, NATS JetStream and Redis Streams: the conformance suite
against the real servers (skipped without one, failed with MICRO_REQUIRE_BACKENDS=1), plus
what only they have."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests._support import free_port, require_nats, require_redis

from micro import errors
from micro.events.testing import StreamSuite, next_delivery, unique
from micro.settings import Settings


@dataclass(frozen=True)
class Backend:
    """How to reach one backend, a closed port of its kind, and a URL of the other kind."""

    module: str
    cls: str
    require: Callable[[], Awaitable[str]]
    url: str
    down: Callable[[int], str]
    wrong: str

    def type(self) -> Any:
        return getattr(pytest.importorskip(f"micro.events.{self.module}"), self.cls)


BACKENDS = {
    "nats": Backend(
        "nats",
        "NatsStream",
        require_nats,
        "nats://127.0.0.1:4222",
        lambda port: f"nats://127.0.0.1:{port}",
        "redis://x",
    ),
    "redis": Backend(
        "redis",
        "RedisStream",
        require_redis,
        "redis://127.0.0.1:6379/0",
        lambda port: f"redis://127.0.0.1:{port}/0",
        "nats://x",
    ),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
async def make(backend: Backend) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Streams on the real server, each under a prefix of its own, deleted afterwards."""
    made: list[Any] = []

    async def make(**options: Any) -> Any:
        url = await backend.require()
        stream = backend.type()(url, prefix=f"t-{uuid.uuid4().hex[:12]}", **options)
        made.append(stream)
        return stream

    yield make
    for stream in made:
        await stream.delete_all()
        await stream.close()


class TestScaleoutStream(StreamSuite):
    @pytest.fixture
    async def stream(self, make: Callable[..., Awaitable[Any]]) -> Any:
        return await make()


async def test_redelivery_after_ack_wait_runs_out_goes_dead(make: Any) -> None:
    stream = await make()
    ns, topic = unique("ns"), unique()
    await stream.publish(topic, b"slow", namespace=ns)
    async with stream.consume(
        topic, group="g", offset=1, auto_ack=False, ack_wait=0.3, retry_limit=0, namespace=ns
    ) as consumer:
        first = await next_delivery(consumer)
        assert first.attempt == 1  # never acked: after its ack wait it is dead
        async with stream.consume(topic + ".dead", group="watch", offset=1, namespace=ns) as dead:
            buried = await next_delivery(dead, timeout=10)
    assert buried.event.payload == b"slow"
    assert buried.event.metadata == {"micro-topic": topic, "micro-sequence": "1"}


async def test_retention_by_count(make: Any) -> None:
    stream = await make(max_events=3)
    ns, topic = unique("ns"), unique()
    for i in range(5):
        await stream.publish(topic, str(i).encode(), namespace=ns)
    assert [e.sequence for e in await stream.read(topic, namespace=ns)] == [3, 4, 5]
    assert [e.sequence for e in await stream.read(topic, offset=1, namespace=ns)] == [3, 4, 5]


async def test_namespaces_with_odd_characters_do_not_collide(make: Any) -> None:
    stream = await make()
    await stream.publish("a.b", b"1", namespace="x")
    await stream.publish("b", b"2", namespace="x.a")
    await stream.publish("a_2Eb", b"3", namespace="x")
    assert await stream.topics(namespace="x") == ["a.b", "a_2Eb"]
    assert await stream.topics(namespace="x.a") == ["b"]
    assert [e.payload for e in await stream.read("a.b", namespace="x")] == [b"1"]


async def test_a_server_that_is_down_is_unavailable(backend: Backend) -> None:
    stream = backend.type()(backend.down(free_port()), connect_timeout=1)
    with pytest.raises(errors.ServiceUnavailable, match=r"127\.0\.0\.1"):
        await stream.publish("t", b"x")
    with pytest.raises(errors.ServiceUnavailable, match=r"127\.0\.0\.1"):
        await stream.read("t")
    consumer = stream.consume("t", group="g")
    with pytest.raises(errors.ServiceUnavailable, match=r"127\.0\.0\.1"):
        await next_delivery(consumer)
    await consumer.stop()
    await stream.close()


def test_from_settings(backend: Backend, tmp_path: Path) -> None:
    cls = backend.type()
    stream = cls.from_settings(
        Settings(home=tmp_path, events_address=backend.url, backend_prefix="p")
    )
    assert (stream.address, stream.prefix) == (backend.url, "p")
    with pytest.raises(ValueError, match="MICRO_EVENTS_ADDRESS"):
        cls.from_settings(Settings(home=tmp_path, events_address=backend.wrong))
