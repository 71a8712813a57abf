"""The facade (``micro.events.publish``/``consume``) and ``@consumer`` handlers."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

import micro.events
from micro.events.consumer import consumer, run_consumers
from micro.events.memory import MemoryStream
from micro.events.testing import next_delivery, unique


class Order(msgspec.Struct):
    id: int
    item: str


async def test_publish_encodes_and_consume_reads() -> None:
    stream = MemoryStream()
    micro.events.set_default(stream, namespace="ns1")
    try:
        topic = unique()
        await micro.events.publish(topic, b"raw")
        await micro.events.publish(topic, "text")
        await micro.events.publish(topic, Order(1, "tea"))
        await micro.events.publish(topic, {"a": 1})
        events = await stream.read(topic, namespace="ns1")
        assert [e.payload for e in events] == [
            b"raw",
            b"text",
            b'{"id":1,"item":"tea"}',
            b'{"a":1}',
        ]
        assert events[2].decode(Order) == Order(1, "tea")
        async with micro.events.consume(topic, offset=3) as c:
            assert (await next_delivery(c)).event.sequence == 3
        assert [e.sequence for e in await micro.events.read(topic, offset=4)] == [4]
    finally:
        await stream.close()


async def test_consumer_handlers_ack_on_return_and_nack_on_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = MemoryStream()
    topic = unique()
    got: list[Order] = []
    done = asyncio.Event()
    failed_once = False

    @consumer(topic, group="g", offset=1, ack_wait=30)
    async def handle(order: Order) -> None:
        nonlocal failed_once
        if order.id == 2 and not failed_once:
            failed_once = True
            raise RuntimeError("boom")
        got.append(order)
        if len(got) == 3:
            done.set()

    for i in (1, 2, 3):
        await stream.publish(topic, msgspec.json.encode(Order(i, "x")), namespace="ns")
    with caplog.at_level(logging.ERROR, logger="micro.events"):
        tasks = await run_consumers(stream, [handle], "ns")
        try:
            async with asyncio.timeout(10):
                await done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(o.id for o in got) == [1, 2, 3]
    assert "boom" in caplog.text
    # all acked: a new consumer of the group gets nothing old
    await stream.publish(topic, msgspec.json.encode(Order(4, "x")), namespace="ns")
    async with stream.consume(topic, group="g", namespace="ns") as c:
        assert (await next_delivery(c)).event.sequence == 4
    await stream.close()


def _sync_handler(evt: bytes) -> None:
    pass


def test_consumer_rejects_sync_handlers() -> None:
    with pytest.raises(TypeError):
        consumer("t", group="g")(_sync_handler)  # type: ignore[arg-type]
