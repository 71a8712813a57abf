"""The transactional outbox: a store write and the events it announces, committed together.

Writing a record and then publishing an event about it is two steps; a process killed
between them has changed the data and told nobody. The outbox makes the pair one step::

    async with Outbox.default() as outbox:          # in a service: its store and stream
        await outbox.write(Record("order/1", data), events=[Message("orders", data)])

How:

1. :meth:`Outbox.write` makes one :meth:`~micro.store.Store.commit` of the record *and*
   one outbox entry per event (table ``<table>.outbox``, a key that sorts by time). Both
   land or neither does (a version conflict of ``if_version`` writes neither).
2. A *relay* publishes every entry in key order and deletes it once the stream has it
   durably. ``write`` relays its own entries at once (so events are not late), and the
   relay loop of ``async with`` (or :meth:`run`) publishes whatever an earlier process
   left: after a crash, on the next start, or by any other replica sharing the store.
3. At least once: a relay killed after the publish and before the delete publishes that
   entry again later. Every event carries metadata ``micro-idempotency-key`` (the entry's
   key, the same on every publish of it); a consumer that must act once keeps the keys it
   handled (e.g. ``store.write(Record(key), if_version=0)``: a second one is a Conflict).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Final

import msgspec

from micro import errors
from micro.events.base import Stream
from micro.metrics.process import default as default_metrics
from micro.store.base import DEFAULT_TABLE, OUTBOX_SUFFIX, Record, Store, Write

__all__ = ["IDEMPOTENCY_KEY", "OUTBOX_SUFFIX", "Message", "Outbox"]

log = logging.getLogger("micro.events")

IDEMPOTENCY_KEY: Final = "micro-idempotency-key"
"""The event metadata key of an outbox event's idempotency key."""

_BATCH: Final = 100


class Message(msgspec.Struct, frozen=True):
    """An event to publish once the write it belongs to is committed."""

    topic: str
    payload: bytes = b""
    metadata: dict[str, str] = {}


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Message).decode


class Outbox:
    """Writes to ``table`` of ``database`` with their events (published to ``namespace``
    of ``stream``); ``interval`` is how often the relay loop looks for leftovers."""

    def __init__(
        self,
        store: Store,
        stream: Stream,
        *,
        database: str,
        table: str = DEFAULT_TABLE,
        namespace: str = "micro",
        interval: float = 5.0,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.store = store
        self.stream = stream
        self.database = database
        self.table = table
        self.outbox_table = table + OUTBOX_SUFFIX
        self.namespace = namespace
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def default(cls, *, interval: float = 5.0) -> Outbox:
        """The running service's store (its database and table) and event stream (its
        namespace), as ``micro.store`` and ``micro.events`` use them."""
        from micro.events.default import default as default_stream
        from micro.store.default import default as default_store

        store = default_store()
        events = default_stream()
        return cls(
            store.store,
            events.stream,
            database=store.database,
            table=store.table,
            namespace=events.namespace,
            interval=interval,
        )

    async def write(
        self, record: Record, *, events: Sequence[Message], if_version: int | None = None
    ) -> None:
        """Write ``record`` (only while at ``if_version``, if given) and queue ``events``,
        in one commit; then publish them. Once this returns the events will be published,
        whatever happens to this process (a failed publish is left to the relay)."""
        entries = [
            Write(Record(_entry_key(), _encode(message)), self.outbox_table, if_version=0)
            for message in events
        ]
        await self.store.commit(
            [Write(record, self.table, if_version), *entries], database=self.database
        )
        try:
            await self._publish([w.record for w in entries])
        except errors.MicroError as exc:
            log.warning("outbox: publishing later (%s)", exc.detail)

    async def relay(self) -> int:
        """Publish every entry left in the outbox, oldest first, deleting each once
        published; how many were published."""
        published = 0
        for _ in range(1_000_000):  # bounded: each round takes up to a batch off
            records = await self.store.read(
                "", prefix=True, limit=_BATCH, database=self.database, table=self.outbox_table
            )
            if not records:
                break
            published += await self._publish(records)
        return published

    async def _publish(self, records: builtins.list[Record]) -> int:
        """Publish these entries in order and delete each one after."""
        published = 0
        async with self._lock:  # one relay at a time in this process: fewer duplicates
            for entry in records:
                try:
                    message = _decode(entry.value)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    # Never publishable: dropped (and said so), or every relay would stop here.
                    log.error(
                        "outbox: entry %s of %s is unreadable; dropped",
                        entry.key,
                        self.outbox_table,
                    )
                    await self.store.delete(
                        entry.key, database=self.database, table=self.outbox_table
                    )
                    continue
                try:
                    await self.store.read(
                        entry.key, database=self.database, table=self.outbox_table
                    )
                except errors.NotFound:
                    continue  # another relay published it meanwhile
                await self.stream.publish(
                    message.topic,
                    message.payload,
                    metadata={**message.metadata, IDEMPOTENCY_KEY: entry.key},
                    namespace=self.namespace,
                )
                await self.store.delete(entry.key, database=self.database, table=self.outbox_table)
                default_metrics().published.inc(message.topic)
                published += 1
        return published

    async def run(self) -> None:
        """Relay for ever, every ``interval`` seconds (failures are logged and retried)."""
        while True:
            try:
                await self.relay()
            except errors.MicroError as exc:
                log.warning("outbox: relay of %s failed: %s", self.outbox_table, exc.detail)
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> Outbox:
        self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _entry_key() -> str:
    """A key that sorts by when it was made (then at random): the relay's order."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex}"
