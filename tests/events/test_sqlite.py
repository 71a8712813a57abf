"""The SQLite stream across a restart (a new instance on the same folder) and retention."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from micro.events.memory import MemoryStream
from micro.events.sqlite import SQLiteStream
from micro.events.testing import next_delivery, unique


async def test_group_position_and_unacked_events_survive_restart(tmp_path: Path) -> None:
    ns, topic, group = unique("ns"), unique(), unique("g")
    stream = SQLiteStream(tmp_path / "events")
    for i in range(1, 6):
        await stream.publish(topic, f"e{i}".encode(), namespace=ns)
    consumer = stream.consume(
        topic, group=group, offset=1, auto_ack=False, ack_wait=0.3, namespace=ns
    )
    for want in (1, 2):
        delivery = await next_delivery(consumer)
        assert delivery.event.sequence == want
        await delivery.ack()
    unacked = await next_delivery(consumer)  # 3: delivered, never acked
    assert unacked.event.sequence == 3
    await stream.close()  # consumers end with it

    again = SQLiteStream(tmp_path / "events")
    try:
        async with again.consume(
            topic, group=group, offset=1, auto_ack=False, ack_wait=0.3, namespace=ns
        ) as consumer:
            got: list[tuple[int, int]] = []
            while len(got) < 3:
                delivery = await next_delivery(consumer)
                got.append((delivery.event.sequence, delivery.attempt))
                await delivery.ack()
        # 3 comes again (its second attempt); 1 and 2 never; 4 and 5 once
        assert sorted(got) == [(3, 2), (4, 1), (5, 1)]
        assert [e.sequence for e in await again.read(topic, namespace=ns)] == [1, 2, 3, 4, 5]
        assert (await again.publish(topic, b"e6", namespace=ns)).sequence == 6
    finally:
        await again.close()


async def test_file_is_wal_and_durable(tmp_path: Path) -> None:
    stream = SQLiteStream(tmp_path / "events")
    await stream.publish("t", b"x")
    await stream.close()
    conn = sqlite3.connect(tmp_path / "events" / "events.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} >= {
            "events",
            "groups",
            "pending",
            "topics",
        }
    finally:
        conn.close()


async def test_retention_by_count_keeps_sequences(tmp_path: Path) -> None:
    stream = SQLiteStream(tmp_path / "events", max_events=3)
    try:
        for i in range(6):
            await stream.publish("t", str(i).encode())
        assert await stream.sweep() == 3
        assert [e.sequence for e in await stream.read("t")] == [4, 5, 6]
        assert (await stream.publish("t", b"x")).sequence == 7
    finally:
        await stream.close()


async def test_retention_by_age() -> None:
    stream = MemoryStream(max_age=60)
    try:
        await stream.publish("t", b"old", timestamp=time.time() - 120)
        await stream.publish("t", b"new")
        assert await stream.sweep() == 1
        assert [e.payload for e in await stream.read("t")] == [b"new"]
    finally:
        await stream.close()


async def test_periodic_sweep() -> None:
    stream = MemoryStream(max_events=1, sweep_interval=0.1)
    try:
        await stream.publish("t", b"1")
        await stream.publish("t", b"2")
        await asyncio.sleep(0.5)  # the sweep runs on its own clock: a point in time
        assert [e.payload for e in await stream.read("t")] == [b"2"]
    finally:
        await stream.close()


async def test_close_ends_consumers(tmp_path: Path) -> None:
    stream = SQLiteStream(tmp_path / "events")
    consumer = stream.consume("t", offset=1)
    waiting = asyncio.ensure_future(consumer.next())
    await stream.publish("other", b"x")  # the stream is running
    await stream.close()
    async with asyncio.timeout(5):
        try:
            await waiting
            raise AssertionError("a delivery after close")
        except StopAsyncIteration:
            pass
