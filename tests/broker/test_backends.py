"""Broker behaviour beyond the suite: slow subscribers, down servers, names."""

from __future__ import annotations

import asyncio

import pytest

from micro import errors
from micro.broker.base import Message
from micro.broker.memory import MemoryBroker


async def test_slow_subscriber_is_ended_not_buffered_forever() -> None:
    broker = MemoryBroker(max_pending=5)
    async with broker.subscribe("t") as slow, broker.subscribe("t") as fast:
        for i in range(8):
            await broker.publish("t", Message(body=str(i).encode()))
            async with asyncio.timeout(5):
                assert (await fast.next()).body == str(i).encode()
        got = [(await slow.next()).body for _ in range(5)]
        assert got == [b"0", b"1", b"2", b"3", b"4"]
        with pytest.raises(errors.ServiceUnavailable, match="fell more than 5"):
            await slow.next()
    await broker.close()


async def test_slow_queue_member_is_replaced_by_the_others() -> None:
    broker = MemoryBroker(max_pending=2)
    async with broker.subscribe("t", queue="q") as a, broker.subscribe("t", queue="q") as b:
        for i in range(6):
            await broker.publish("t", Message(body=str(i).encode()))
        # a and b each took 2 (round robin) then overflowed on their 3rd: both ended.
        assert [(await a.next()).body for _ in range(2)] == [b"0", b"2"]
        with pytest.raises(errors.ServiceUnavailable):
            await a.next()
        assert [(await b.next()).body for _ in range(2)] == [b"1", b"3"]
    await broker.close()


async def test_close_ends_open_subscriptions() -> None:
    broker = MemoryBroker()
    sub = broker.subscribe("t")
    await sub.__aenter__()
    await broker.close()
    with pytest.raises(StopAsyncIteration):
        await sub.next()


async def test_nats_down_is_service_unavailable_naming_the_address() -> None:
    pytest.importorskip("nats")
    from micro.broker.nats import NatsBroker

    broker = NatsBroker("nats://127.0.0.1:1")
    with pytest.raises(errors.ServiceUnavailable, match=r"nats://127\.0\.0\.1:1"):
        await broker.publish("t", Message(body=b"x"))
    with pytest.raises(errors.ServiceUnavailable, match=r"nats://127\.0\.0\.1:1"):
        async with broker.subscribe("t"):
            pass
    await broker.close()


async def test_redis_down_is_service_unavailable_naming_the_address() -> None:
    pytest.importorskip("redis")
    from micro.broker.redis import RedisBroker

    broker = RedisBroker("redis://:secret@127.0.0.1:1/0", connect_timeout=1)
    with pytest.raises(errors.ServiceUnavailable, match=r"127\.0\.0\.1:1") as info:
        await broker.publish("t", Message(body=b"x"))
    assert "secret" not in str(info.value)
    with pytest.raises(errors.ServiceUnavailable):
        async with broker.subscribe("t", queue="q"):
            pass
    await broker.close()


def test_nats_subject_tokens_are_one_to_one() -> None:
    pytest.importorskip("nats")
    from micro.broker.nats import subject_token

    assert subject_token("a.b/c-d_e") == "a~b/c-d_e"
    assert subject_token("a~b") != subject_token("a.b")
    assert subject_token("ns:x") == "ns%3Ax"
