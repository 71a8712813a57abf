"""The transactional outbox: a write and its events land together, a conflict writes and
publishes nothing, and a process SIGKILLed between the store write and the publish loses
no event (the next relay publishes it, with its idempotency key)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from micro import errors
from micro.events.memory import MemoryStream
from micro.events.outbox import IDEMPOTENCY_KEY, Message, Outbox
from micro.events.sqlite import SQLiteStream
from micro.events.testing import next_delivery
from micro.store.base import Record
from micro.store.memory import MemoryStore
from micro.store.sqlite import SQLiteStore

WRITER = Path(__file__).with_name("outbox_writer.py")


async def test_write_publishes_its_events_once_and_a_conflict_nothing() -> None:
    store, stream = MemoryStore(), MemoryStream()
    outbox = Outbox(store, stream, database="shop", table="orders", namespace="shop")
    await outbox.write(
        Record("order/1", b"a"),
        events=[Message("orders", b"1"), Message("audit", b"x", {"who": "ann"})],
        if_version=0,
    )
    [order] = await stream.read("orders", namespace="shop")
    [audit] = await stream.read("audit", namespace="shop")
    assert (order.payload, audit.metadata["who"]) == (b"1", "ann")
    assert order.metadata[IDEMPOTENCY_KEY] != audit.metadata[IDEMPOTENCY_KEY]
    assert await store.list(database="shop", table="orders.outbox") == []
    with pytest.raises(errors.Conflict):
        await outbox.write(Record("order/1", b"b"), events=[Message("orders", b"2")], if_version=0)
    assert len(await stream.read("orders", namespace="shop")) == 1
    assert await store.list(database="shop", table="orders.outbox") == []
    assert await outbox.relay() == 0
    # An entry no relay could ever publish is dropped, not retried for ever.
    await store.write(Record("0-bad", b"\xc1"), database="shop", table="orders.outbox")
    assert await outbox.relay() == 0
    assert await store.list(database="shop", table="orders.outbox") == []
    await stream.close()


async def test_sigkill_between_the_write_and_its_publish_loses_no_event(tmp_path: Path) -> None:
    store_dir, events_dir = tmp_path / "store", tmp_path / "events"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(store_dir), str(events_dir),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            assert await proc.stdout.readline() == b"committed\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store, stream = SQLiteStore(store_dir), SQLiteStream(events_dir)
    try:
        # The data is there and the event is not published yet: only the outbox has it.
        assert (await store.read("order/1", database="shop", table="orders"))[0].version == 1
        assert await stream.read("orders", namespace="shop") == []
        outbox = Outbox(store, stream, database="shop", table="orders", namespace="shop")
        async with outbox, stream.consume("orders", offset=1, namespace="shop") as consumer:
            await next_delivery(consumer)  # the relay of the next start published it
            # ...and deletes the entry just after the publish that was delivered: wait for it.
            for _ in range(600):
                if not await store.list(database="shop", table="orders.outbox"):
                    break
                await asyncio.sleep(0.05)
        assert await store.list(database="shop", table="orders.outbox") == []
        [event] = await stream.read("orders", namespace="shop")
        assert event.payload == b'{"id": 1}'
        assert event.metadata[IDEMPOTENCY_KEY]
        assert await outbox.relay() == 0  # nothing published twice
    finally:
        await stream.close()
        await store.close()
