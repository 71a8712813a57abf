"""A process that writes through the outbox and is killed before it can publish.

Usage: ``python outbox_writer.py STORE_DIR EVENTS_DIR``. Its stream's ``publish`` prints
``committed`` (the store commit is durable by then) and then blocks for ever, so the test
can SIGKILL it exactly between the store write and the event's publish.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from micro.events.base import Event
from micro.events.outbox import Message, Outbox
from micro.events.sqlite import SQLiteStream
from micro.store.base import Record
from micro.store.sqlite import SQLiteStore


class _Stuck(SQLiteStream):
    async def publish(self, *args: Any, **kwargs: Any) -> Event:
        print("committed", flush=True)
        await asyncio.Event().wait()  # the process dies here
        raise AssertionError("unreachable")


async def main(store_dir: str, events_dir: str) -> None:
    store, stream = SQLiteStore(store_dir), _Stuck(events_dir)
    outbox = Outbox(store, stream, database="shop", table="orders", namespace="shop")
    await outbox.write(Record("order/1", b'{"total": 5}'), events=[Message("orders", b'{"id": 1}')])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
