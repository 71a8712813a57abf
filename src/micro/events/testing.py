"""The events conformance suite: every :class:`~micro.events.base.Stream` must pass it, the
RPC client included.

Subclass :class:`StreamSuite` and provide a ``stream`` fixture. Each test uses topics and a
namespace of its own (random names), so the suite can run against a shared real server. It
calls nothing but the interface of :mod:`micro.events.base`, and awaits deliveries with a
timeout instead of polling.
"""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid

import pytest

from micro import errors
from micro.events.base import DEAD_LETTER_SUFFIX, Consumer, Delivery, Group, Stream

__all__ = ["WAIT", "StreamSuite", "next_delivery", "unique"]

WAIT = 10.0
"""How long a test waits for a delivery that must come."""

ACK_WAIT = 0.3
"""The short ack wait of the redelivery tests."""


def unique(prefix: str = "t") -> str:
    """A fresh topic, group or namespace name."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


async def next_delivery(consumer: Consumer, timeout: float = WAIT) -> Delivery:
    """The consumer's next delivery, failing the test if none comes within ``timeout``."""
    async with asyncio.timeout(timeout):
        return await consumer.next()


async def _settled(stream: Stream, topic: str, ns: str, want: Group) -> Group:
    """The group once it shows ``want``: acks reach some backends a moment after ``ack()``
    returns (NATS acks are published, not confirmed), so this looks a bounded few times."""
    found: Group | None = None
    for _ in range(100):
        found = next(
            (g for g in await stream.groups(topic, namespace=ns) if g.group == want.group), None
        )
        if found == want:
            return found
        await asyncio.sleep(0.05)
    assert found == want
    return found


async def _publish_n(stream: Stream, topic: str, n: int, ns: str, start: int = 1) -> None:
    for i in range(start, start + n):
        await stream.publish(topic, f"e{i}".encode(), namespace=ns)


class StreamSuite:
    """Behaviour every :class:`~micro.events.base.Stream` must show."""

    async def test_publish_returns_increasing_sequences(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        before = time.time()
        one = await stream.publish(topic, b"one", metadata={"k": "v"}, namespace=ns)
        two = await stream.publish(topic, b"two", namespace=ns)
        three = await stream.publish(topic, b"three", timestamp=1_000_000.5, namespace=ns)
        assert [e.sequence for e in (one, two, three)] == [1, 2, 3]
        assert len({one.id, two.id, three.id}) == 3
        assert all(e.id for e in (one, two, three))
        assert (one.topic, one.payload, one.metadata) == (topic, b"one", {"k": "v"})
        assert before - 1 <= one.timestamp <= time.time() + 1
        assert three.timestamp == 1_000_000.5
        other = await stream.publish(unique(), b"x", namespace=ns)
        assert other.sequence == 1  # sequences are per topic

    async def test_read_from_start_offset_and_time(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        base = 1_700_000_000.0
        for i in range(1, 6):
            await stream.publish(
                topic, f"e{i}".encode(), metadata={"i": str(i)}, timestamp=base + i, namespace=ns
            )
        events = await stream.read(topic, namespace=ns)
        assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
        assert [e.payload for e in events] == [b"e1", b"e2", b"e3", b"e4", b"e5"]
        assert events[3].metadata == {"i": "4"}
        assert events[3].timestamp == base + 4
        assert all(e.topic == topic for e in events)
        assert [e.sequence for e in await stream.read(topic, offset=3, namespace=ns)] == [3, 4, 5]
        assert [e.sequence for e in await stream.read(topic, limit=2, namespace=ns)] == [1, 2]
        assert [e.sequence for e in await stream.read(topic, offset=2, limit=2, namespace=ns)] == [
            2,
            3,
        ]
        at = datetime.datetime.fromtimestamp(base + 4, tz=datetime.UTC)
        assert [e.sequence for e in await stream.read(topic, offset=at, namespace=ns)] == [4, 5]
        assert await stream.read(topic, offset=99, namespace=ns) == []
        assert await stream.read(unique(), namespace=ns) == []
        # reading consumes nothing
        assert len(await stream.read(topic, namespace=ns)) == 5

    async def test_consume_delivers_in_order(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        await _publish_n(stream, topic, 5, ns)
        async with stream.consume(topic, offset=1, namespace=ns) as consumer:
            got = [await next_delivery(consumer) for _ in range(5)]
            assert [d.event.sequence for d in got] == [1, 2, 3, 4, 5]
            assert [d.event.payload for d in got] == [b"e1", b"e2", b"e3", b"e4", b"e5"]
            assert all(d.attempt == 1 and d.event.topic == topic for d in got)
            # events published while consuming follow
            await _publish_n(stream, topic, 2, ns, start=6)
            later = [await next_delivery(consumer) for _ in range(2)]
            assert [d.event.sequence for d in later] == [6, 7]

    async def test_async_for_and_stop(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        await _publish_n(stream, topic, 3, ns)
        consumer = stream.consume(topic, offset=1, namespace=ns)
        seen: list[int] = []
        async with asyncio.timeout(WAIT):
            async for delivery in consumer:
                seen.append(delivery.event.sequence)
                if len(seen) == 3:
                    await consumer.stop()
        assert seen == [1, 2, 3]
        with pytest.raises(StopAsyncIteration):
            await consumer.next()

    async def test_offset_zero_starts_a_new_group_at_the_first_event(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        await stream.publish(topic, b"first", namespace=ns)
        await stream.publish(topic, b"second", namespace=ns)
        async with stream.consume(topic, group=unique("g"), offset=0, namespace=ns) as consumer:
            assert (await next_delivery(consumer)).event.payload == b"first"

    async def test_consume_from_sequence_and_time(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        base = 1_700_000_000.0
        for i in range(1, 6):
            await stream.publish(topic, f"e{i}".encode(), timestamp=base + i, namespace=ns)
        async with stream.consume(topic, offset=4, namespace=ns) as consumer:
            assert (await next_delivery(consumer)).event.sequence == 4
        at = datetime.datetime.fromtimestamp(base + 2, tz=datetime.UTC)
        async with stream.consume(topic, offset=at, namespace=ns) as consumer:
            assert (await next_delivery(consumer)).event.sequence == 2
            assert (await next_delivery(consumer)).event.sequence == 3

    async def test_new_group_without_offset_gets_only_new_events(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        await _publish_n(stream, topic, 3, ns)
        for group in (unique("g"), None):
            async with stream.consume(topic, group=group, namespace=ns) as consumer:
                # The consumer may attach after consume() returns (over a network): publish
                # until one arrives; none of the old events may ever come.
                first = None
                for _ in range(20):
                    await stream.publish(topic, b"new", namespace=ns)
                    try:
                        first = await next_delivery(consumer, timeout=0.5)
                        break
                    except TimeoutError:
                        continue
                assert first is not None
                assert first.event.sequence > 3
                assert first.event.payload == b"new"

    async def test_one_group_shares_the_events(self, stream: Stream) -> None:
        ns, topic, group = unique("ns"), unique(), unique("g")
        await _publish_n(stream, topic, 20, ns)
        seen: list[int] = []
        one = stream.consume(topic, group=group, offset=1, namespace=ns)
        two = stream.consume(topic, group=group, offset=1, namespace=ns)

        async def take(consumer: Consumer) -> None:
            while True:
                delivery = await consumer.next()
                seen.append(delivery.event.sequence)
                if len(set(seen)) == 20:
                    return

        try:
            async with asyncio.timeout(WAIT):
                tasks = [asyncio.create_task(take(c)) for c in (one, two)]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await one.stop()
            await two.stop()
        assert sorted(seen) == list(range(1, 21))  # each once over both consumers

    async def test_different_groups_each_get_all(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        await _publish_n(stream, topic, 5, ns)
        async with (
            stream.consume(topic, group=unique("a"), offset=1, namespace=ns) as a,
            stream.consume(topic, group=unique("b"), offset=1, namespace=ns) as b,
        ):
            got_a = [(await next_delivery(a)).event.sequence for _ in range(5)]
            got_b = [(await next_delivery(b)).event.sequence for _ in range(5)]
        assert got_a == got_b == [1, 2, 3, 4, 5]

    async def test_group_position_survives_reconsuming(self, stream: Stream) -> None:
        ns, topic, group = unique("ns"), unique(), unique("g")
        await _publish_n(stream, topic, 5, ns)
        async with stream.consume(
            topic, group=group, offset=1, auto_ack=False, ack_wait=ACK_WAIT, namespace=ns
        ) as consumer:
            for want in (1, 2, 3):
                delivery = await next_delivery(consumer)
                assert delivery.event.sequence == want
                await delivery.ack()
        # the same group again: the offset is ignored, it resumes after what was acked
        async with stream.consume(
            topic, group=group, offset=1, auto_ack=False, ack_wait=ACK_WAIT, namespace=ns
        ) as consumer:
            # 4 and 5, each at least once (one may have been handed to the first consumer
            # unacked, and so comes after its ack wait); never the acked 1 to 3
            seen: set[int] = set()
            while seen != {4, 5}:
                delivery = await next_delivery(consumer)
                assert delivery.event.sequence in (4, 5)
                seen.add(delivery.event.sequence)
                await delivery.ack()

    async def test_auto_ack_does_not_redeliver(self, stream: Stream) -> None:
        ns, topic, group = unique("ns"), unique(), unique("g")
        await _publish_n(stream, topic, 2, ns)
        async with stream.consume(
            topic, group=group, offset=1, auto_ack=True, ack_wait=ACK_WAIT, namespace=ns
        ) as consumer:
            assert (await next_delivery(consumer)).event.sequence == 1
            assert (await next_delivery(consumer)).event.sequence == 2
            await asyncio.sleep(ACK_WAIT * 3)  # past the ack wait: a point in time
            await stream.publish(topic, b"e3", namespace=ns)
            delivery = await next_delivery(consumer)
            assert (delivery.event.sequence, delivery.attempt) == (3, 1)

    async def test_manual_ack(self, stream: Stream) -> None:
        ns, topic, group = unique("ns"), unique(), unique("g")
        await _publish_n(stream, topic, 2, ns)
        async with stream.consume(
            topic, group=group, offset=1, auto_ack=False, ack_wait=ACK_WAIT, namespace=ns
        ) as consumer:
            one = await next_delivery(consumer)
            assert (one.event.sequence, one.attempt) == (1, 1)
            await one.ack()
            two = await next_delivery(consumer)
            assert (two.event.sequence, two.attempt) == (2, 1)
            # not acked within the ack wait: delivered again
            again = await next_delivery(consumer)
            assert (again.event.sequence, again.attempt) == (2, 2)
            assert again.event.payload == b"e2"
            await again.ack()
            await stream.publish(topic, b"e3", namespace=ns)
            three = await next_delivery(consumer)
            assert (three.event.sequence, three.attempt) == (3, 1)
            await three.ack()

    async def test_nack_redelivers_promptly(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        await _publish_n(stream, topic, 1, ns)
        async with stream.consume(
            topic, group=unique("g"), offset=1, auto_ack=False, ack_wait=60, namespace=ns
        ) as consumer:
            first = await next_delivery(consumer)
            await first.nack()
            again = await next_delivery(consumer, timeout=5)  # long before the ack wait
            assert (again.event.sequence, again.attempt) == (1, 2)
            await again.ack()

    async def test_retry_limit_moves_to_dead_letter_topic(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        await stream.publish(topic, b"poison", metadata={"k": "v"}, namespace=ns)
        dead_topic = topic + DEAD_LETTER_SUFFIX
        async with (
            stream.consume(dead_topic, offset=1, namespace=ns) as dead,
            stream.consume(
                topic,
                group=unique("g"),
                offset=1,
                auto_ack=False,
                ack_wait=60,
                retry_limit=1,
                namespace=ns,
            ) as consumer,
        ):
            first = await next_delivery(consumer)
            assert (first.event.sequence, first.attempt) == (1, 1)
            await first.nack()
            second = await next_delivery(consumer)
            assert (second.event.sequence, second.attempt) == (1, 2)
            await second.nack()  # one redelivery was allowed: now it is dead
            buried = await next_delivery(dead)
            assert buried.event.payload == b"poison"
            assert buried.event.topic == dead_topic
            assert buried.event.metadata.get("k") == "v"
            # the group goes on with the next event; the dead one never comes back
            await stream.publish(topic, b"fine", namespace=ns)
            after = await next_delivery(consumer)
            assert (after.event.sequence, after.attempt) == (2, 1)
            await after.ack()
        [stored] = await stream.read(dead_topic, namespace=ns)
        assert stored.payload == b"poison"

    async def test_namespaces_are_isolated(self, stream: Stream) -> None:
        one, two, topic = unique("ns"), unique("ns"), unique()
        await stream.publish(topic, b"one", namespace=one)
        await stream.publish(topic, b"two", namespace=two)
        await stream.publish(topic, b"two-b", namespace=two)
        assert [e.payload for e in await stream.read(topic, namespace=one)] == [b"one"]
        assert [e.payload for e in await stream.read(topic, namespace=two)] == [b"two", b"two-b"]
        assert await stream.topics(namespace=one) == [topic]
        assert await stream.read(topic, namespace=unique("ns")) == []
        async with stream.consume(topic, offset=1, namespace=two) as consumer:
            assert (await next_delivery(consumer)).event.payload == b"two"

    async def test_topics_lists_sorted(self, stream: Stream) -> None:
        ns = unique("ns")
        assert await stream.topics(namespace=ns) == []
        names = sorted([unique("b"), unique("a"), unique("c") + ".sub"])
        for name in reversed(names):
            await stream.publish(name, b"x", namespace=ns)
        assert await stream.topics(namespace=ns) == names

    async def test_bad_input_is_rejected(self, stream: Stream) -> None:
        ns = unique("ns")
        with pytest.raises(errors.BadRequest):
            await stream.publish("", b"x", namespace=ns)
        with pytest.raises(errors.BadRequest):
            await stream.publish("bad topic", b"x", namespace=ns)
        with pytest.raises(errors.BadRequest):
            await stream.read(unique(), limit=-1, namespace=ns)
        with pytest.raises(errors.BadRequest):
            await stream.read("", namespace=ns)
        consumers: list[Consumer] = []

        async def consume_empty_topic() -> None:
            # a local stream refuses at once; a remote one may only on the first next()
            consumers.append(stream.consume("", namespace=ns))
            await next_delivery(consumers[0])

        try:
            with pytest.raises(errors.BadRequest):
                await consume_empty_topic()
        finally:
            for consumer in consumers:
                await consumer.stop()
        assert await stream.topics(namespace=ns) == []

    async def test_concurrent_publishes_get_distinct_sequences(self, stream: Stream) -> None:
        ns, topic = unique("ns"), unique()
        events = await asyncio.gather(
            *(stream.publish(topic, str(i).encode(), namespace=ns) for i in range(50))
        )
        assert sorted(e.sequence for e in events) == list(range(1, 51))
        stored = await stream.read(topic, namespace=ns)
        assert [e.sequence for e in stored] == list(range(1, 51))
        by_seq = {e.sequence: e.payload for e in events}
        assert all(by_seq[e.sequence] == e.payload for e in stored)

    async def test_groups_show_position_and_lag_and_reset_moves_them(self, stream: Stream) -> None:
        ns, topic, g = unique("ns"), unique(), unique("g")
        base = 1_700_000_000.0
        for i in range(1, 4):
            await stream.publish(topic, f"e{i}".encode(), timestamp=base + i, namespace=ns)
        assert await stream.groups(topic, namespace=ns) == []
        assert await stream.reset(topic, g, offset=2, namespace=ns) == Group(g, 2, 0, 2)
        async with stream.consume(topic, group=g, auto_ack=False, namespace=ns) as consumer:
            for seq in (2, 3):
                delivery = await next_delivery(consumer)
                assert delivery.event.sequence == seq
                await delivery.ack()
            await _settled(stream, topic, ns, Group(g, 4, 0, 0))
        await _publish_n(stream, topic, 2, ns, start=4)
        await _settled(stream, topic, ns, Group(g, 4, 0, 2))
        # Back to the start: every event again.
        assert await stream.reset(topic, g, offset=1, namespace=ns) == Group(g, 1, 0, 5)
        async with stream.consume(topic, group=g, namespace=ns) as consumer:
            assert (await next_delivery(consumer)).event.sequence == 1
        # To a time, to the end, and a group of one is never listed.
        at = datetime.datetime.fromtimestamp(base + 3, tz=datetime.UTC)
        assert await stream.reset(topic, g, offset=at, namespace=ns) == Group(g, 3, 0, 3)
        async with stream.consume(topic, offset=1, namespace=ns) as alone:
            await next_delivery(alone)
            assert await stream.reset(topic, g, offset=None, namespace=ns) == Group(g, 6, 0, 0)
            assert [x.group for x in await stream.groups(topic, namespace=ns)] == [g]
        assert await stream.groups(topic, namespace=unique("ns")) == []

    async def test_reset_forgets_unacked_deliveries(self, stream: Stream) -> None:
        ns, topic, g = unique("ns"), unique(), unique("g")
        await _publish_n(stream, topic, 2, ns)
        async with stream.consume(
            topic, group=g, offset=1, auto_ack=False, ack_wait=60, namespace=ns
        ) as consumer:
            assert (await next_delivery(consumer)).event.sequence == 1  # never acked
        [held] = await stream.groups(topic, namespace=ns)
        assert held.pending >= 1
        assert await stream.reset(topic, g, offset=2, namespace=ns) == Group(g, 2, 0, 1)
        async with stream.consume(topic, group=g, auto_ack=False, namespace=ns) as consumer:
            delivery = await next_delivery(consumer)
            assert (delivery.event.sequence, delivery.attempt) == (2, 1)

    async def test_groups_and_reset_reject_bad_input(self, stream: Stream) -> None:
        ns = unique("ns")
        with pytest.raises(errors.BadRequest):
            await stream.groups("bad topic", namespace=ns)
        with pytest.raises(errors.BadRequest):
            await stream.reset(unique(), "bad group!", offset=1, namespace=ns)
        with pytest.raises(errors.BadRequest):
            await stream.reset("bad topic", "g", offset=1, namespace=ns)
