"""The framework side: micro.broker.publish/subscribe and @service.subscribe handlers."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

import micro.broker
from micro.broker.base import Message
from micro.broker.memory import MemoryBroker
from micro.broker.subscriber import SubscriberSpec, run_subscribers, subscriber


class Order(msgspec.Struct):
    id: int
    item: str = ""


async def test_publish_encodes_bytes_str_and_values() -> None:
    broker = MemoryBroker()
    micro.broker.set_default(broker, namespace="shop")
    async with micro.broker.subscribe("orders") as sub:
        await micro.broker.publish("orders", b"\x00raw")
        await micro.broker.publish("orders", "text")
        await micro.broker.publish("orders", Order(1, "tea"), header={"x-id": "7"})
        async with asyncio.timeout(5):
            raw, text, value = [await sub.next() for _ in range(3)]
    assert raw.body == b"\x00raw"
    assert text.body == b"text"
    assert msgspec.json.decode(value.body, type=Order) == Order(1, "tea")
    assert value.header["Content-Type"] == "application/json"
    assert value.header["Micro-Topic"] == "orders"
    assert value.header["x-id"] == "7"
    # The default namespace is the one set: another namespace does not see it.
    async with broker.subscribe("orders", namespace="other") as other:
        await micro.broker.publish("orders", b"x")
        await broker.publish("orders", Message(body=b"y"), namespace="other")
        async with asyncio.timeout(5):
            assert (await other.next()).body == b"y"


async def test_subscribers_decode_and_survive_bad_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = MemoryBroker()
    specs: list[SubscriberSpec] = []
    got: asyncio.Queue[object] = asyncio.Queue()

    @subscriber("orders", into=specs)
    async def typed(order: Order) -> None:
        await got.put(order)

    @subscriber("orders", queue="raw", into=specs)
    async def raw(message: Message) -> None:
        await got.put(message.body)

    @subscriber("fail", into=specs)
    async def boom(body: bytes) -> None:
        raise RuntimeError("handler failed")

    assert [s.topic for s in typed.__micro_subscribers__] == ["orders"]  # type: ignore[attr-defined]
    tasks = await run_subscribers(broker, specs, "shop")
    try:
        with caplog.at_level(logging.WARNING, logger="micro.broker"):
            await broker.publish("orders", Message(body=b"not json"), namespace="shop")
            await broker.publish("fail", Message(body=b"x"), namespace="shop")
            await broker.publish("orders", Message(body=b'{"id": 2}'), namespace="shop")
            seen: list[object] = []
            async with asyncio.timeout(5):
                while len(seen) < 3:
                    seen.append(await got.get())
        assert Order(2) in seen
        assert seen.count(b"not json") == 1
        assert b'{"id": 2}' in seen
        assert "undecodable" in caplog.text
        assert "handler failed" in caplog.text or "fail failed" in caplog.text
        assert all(not t.done() for t in tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Cancelled tasks unsubscribed: nothing is left on the broker.
    assert broker._topics == {}


def test_subscriber_mistakes_raise_at_decoration() -> None:
    with pytest.raises(TypeError, match="async def"):

        @subscriber("t")  # type: ignore[type-var]
        def sync(m: bytes) -> None: ...

    with pytest.raises(micro.errors.BadRequest):
        subscriber("bad topic")
