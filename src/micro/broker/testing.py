"""The broker conformance suite: every implementation must pass it, the RPC client included.

Subclass :class:`BrokerSuite` and provide a ``broker`` fixture. Each test publishes in a
namespace of its own, so the suite can run against a shared real server. Deliveries are
awaited (bounded by ``asyncio.timeout``), never polled for.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from micro import errors
from micro.broker.base import Broker, Message, Subscriber

__all__ = ["BrokerSuite"]

WAIT = 10.0


def _ns() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


async def _recv(sub: Subscriber) -> Message:
    async with asyncio.timeout(WAIT):
        return await sub.next()


async def _bodies(sub: Subscriber, n: int) -> list[bytes]:
    return [(await _recv(sub)).body for _ in range(n)]


class BrokerSuite:
    """Behaviour every :class:`~micro.broker.base.Broker` must show."""

    async def test_fan_out_to_every_subscriber(self, broker: Broker) -> None:
        ns = _ns()
        subs = [broker.subscribe("orders", namespace=ns) for _ in range(3)]
        for sub in subs:
            await sub.__aenter__()
        try:
            sent = [f"m{i}".encode() for i in range(5)]
            for body in sent:
                await broker.publish("orders", Message(body=body), namespace=ns)
            for sub in subs:
                assert sorted(await _bodies(sub, 5)) == sorted(sent)
        finally:
            for sub in subs:
                await sub.stop()

    async def test_queue_group_gets_each_message_once(self, broker: Broker) -> None:
        ns = _ns()
        members = [broker.subscribe("jobs", queue="workers", namespace=ns) for _ in range(3)]
        plain = broker.subscribe("jobs", namespace=ns)
        got: list[bytes] = []
        enough = asyncio.Event()
        target = 0

        async def drain(sub: Subscriber) -> None:
            async for message in sub:
                got.append(message.body)
                if len(got) >= target:
                    enough.set()

        for sub in [*members, plain]:
            await sub.__aenter__()
        tasks = [asyncio.create_task(drain(sub)) for sub in members]
        try:
            # Two rounds: a duplicate of a first-round message would arrive before the
            # second round completes, so the exact count at the end catches it.
            sent: list[bytes] = []
            for round_ in range(2):
                batch = [f"r{round_}-{i}".encode() for i in range(30)]
                sent += batch
                target = len(sent)
                enough.clear()
                for body in batch:
                    await broker.publish("jobs", Message(body=body), namespace=ns)
                async with asyncio.timeout(WAIT):
                    await enough.wait()
            assert len(got) == len(sent)
            assert Counter(got) == Counter(sent)
            assert sorted(await _bodies(plain, 60)) == sorted(sent)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sub in [*members, plain]:
                await sub.stop()

    async def test_queue_group_and_plain_subscribers_both_get_it(self, broker: Broker) -> None:
        ns = _ns()
        async with (
            broker.subscribe("t", queue="a", namespace=ns) as a,
            broker.subscribe("t", queue="b", namespace=ns) as b,
            broker.subscribe("t", namespace=ns) as c,
        ):
            await broker.publish("t", Message(body=b"x"), namespace=ns)
            for sub in (a, b, c):
                assert (await _recv(sub)).body == b"x"

    async def test_namespaces_are_isolated(self, broker: Broker) -> None:
        ns1, ns2 = _ns(), _ns()
        async with (
            broker.subscribe("news", namespace=ns1) as one,
            broker.subscribe("news", namespace=ns2) as two,
        ):
            await broker.publish("news", Message(body=b"for-2"), namespace=ns2)
            await broker.publish("news", Message(body=b"for-1"), namespace=ns1)
            assert (await _recv(one)).body == b"for-1"
            assert (await _recv(two)).body == b"for-2"

    async def test_topics_are_separate(self, broker: Broker) -> None:
        ns = _ns()
        async with broker.subscribe("a.b", namespace=ns) as sub:
            for topic in ("a", "a.b.c", "a/b", "a-b"):
                await broker.publish(topic, Message(body=topic.encode()), namespace=ns)
            await broker.publish("a.b", Message(body=b"mine"), namespace=ns)
            assert (await _recv(sub)).body == b"mine"

    @pytest.mark.parametrize("topic", ["", "a b", "a*", "a>", "ä", "a:b", "a\nb"])
    async def test_invalid_topic_is_bad_request(self, broker: Broker, topic: str) -> None:
        with pytest.raises(errors.BadRequest):
            await broker.publish(topic, Message(body=b"x"), namespace=_ns())
        with pytest.raises(errors.BadRequest):
            async with broker.subscribe(topic, namespace=_ns()):
                pass

    async def test_valid_topic_characters(self, broker: Broker) -> None:
        ns = _ns()
        topic = "Orders/EU.created_v2-x"
        async with broker.subscribe(topic, namespace=ns) as sub:
            await broker.publish(topic, Message(body=b"ok"), namespace=ns)
            assert (await _recv(sub)).body == b"ok"

    async def test_unsubscribe_stops_delivery(self, broker: Broker) -> None:
        ns = _ns()
        gone = broker.subscribe("t", namespace=ns)
        async with gone, broker.subscribe("t", namespace=ns) as stays:
            await broker.publish("t", Message(body=b"1"), namespace=ns)
            assert (await _recv(gone)).body == b"1"
            assert (await _recv(stays)).body == b"1"
            await gone.stop()
            await broker.publish("t", Message(body=b"2"), namespace=ns)
            assert (await _recv(stays)).body == b"2"
            with pytest.raises(StopAsyncIteration):
                await _recv(gone)

    async def test_stop_ends_a_pending_read_and_iteration(self, broker: Broker) -> None:
        sub = broker.subscribe("t", namespace=_ns())
        await sub.__aenter__()
        reader = asyncio.create_task(sub.next())
        await asyncio.sleep(0)
        await sub.stop()
        async with asyncio.timeout(WAIT):
            with pytest.raises((StopAsyncIteration, errors.MicroError)):
                await reader
        assert [m async for m in sub] == []

    async def test_stopped_queue_member_leaves_the_group(self, broker: Broker) -> None:
        ns = _ns()
        leaver = broker.subscribe("t", queue="q", namespace=ns)
        async with leaver, broker.subscribe("t", queue="q", namespace=ns) as stays:
            await leaver.stop()
            sent = [f"{i}".encode() for i in range(10)]
            for body in sent:
                await broker.publish("t", Message(body=body), namespace=ns)
            assert sorted(await _bodies(stays, 10)) == sorted(sent)

    async def test_binary_body_and_headers_round_trip(self, broker: Broker) -> None:
        ns = _ns()
        body = bytes(range(256)) * 8
        header = {"content-type": "application/octet-stream", "X-Trace": "abc-123", "n": "1"}
        async with broker.subscribe("bin", namespace=ns) as sub:
            await broker.publish("bin", Message(header=header, body=body), namespace=ns)
            await broker.publish("bin", Message(), namespace=ns)
            got = await _recv(sub)
            assert got.body == body
            assert got.header.items() >= header.items()
            empty = await _recv(sub)
            assert empty.body == b""

    async def test_subscriber_opened_after_publish_misses_it(self, broker: Broker) -> None:
        ns = _ns()
        await broker.publish("late", Message(body=b"before"), namespace=ns)
        async with (
            broker.subscribe("late", queue="q", namespace=ns) as queued,
            broker.subscribe("late", namespace=ns) as sub,
        ):
            await broker.publish("late", Message(body=b"after"), namespace=ns)
            assert (await _recv(sub)).body == b"after"
            assert (await _recv(queued)).body == b"after"
