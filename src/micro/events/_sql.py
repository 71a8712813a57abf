"""The engine behind the SQLite and memory streams: all of their SQL, one thread that runs
it in group commit, and the consumer that pulls deliveries from it.

sqlite3 blocks, so it runs off the event loop. One thread per stream takes every queued
operation, runs each in a savepoint of one transaction and resolves the callers' futures
only after that transaction's ``COMMIT`` (``synchronous = FULL`` in WAL mode for a file:
on disk, power loss included). Concurrent publishers so share one fsync.

Tables: ``topics`` (the last sequence of each topic, so retention never reuses one),
``events``, ``groups`` (the next sequence of each consumer group) and ``pending`` (events
delivered to a group and not acknowledged yet, with their attempt and ack deadline). A
group's position and its unacked events so survive a restart.

A consumer *claims* its next delivery in one transaction: first a pending event whose
deadline passed (redelivery, or dead-lettering past the retry limit), else the group's next
event. Consumers of a topic wait for a wake-up (a publish, a nack) or the earliest
deadline, never polling.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from micro import errors
from micro._batch import take_batch
from micro.events._checks import (
    check_consume,
    check_group,
    check_limit,
    check_namespace,
    check_offset,
    check_payload,
    check_topic,
    offset_time,
)
from micro.events._sql_ops import (
    _BATCH,
    _EPHEMERAL,
    _SCHEMA,
    _ack,
    _append,
    _Claim,
    _claim,
    _drop_group,
    _groups,
    _read,
    _release,
    _reset,
    _sweep,
    _topics,
)
from micro.events.base import Consumer, Delivery, Event, Group, Offset, Stream

__all__ = ["SQLStream"]

log = logging.getLogger("micro.events")


class _Job:
    __slots__ = ("args", "fn", "fut", "loop")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        fut: asyncio.Future[Any] | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.fut = fut
        self.loop = loop


_STOP: Final = _Job(lambda conn: None, (), None, None)


def _settle(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, value, exc in results:
        if fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


def _failure(exc: sqlite3.Error, where: str) -> errors.MicroError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in text for word in ("locked", "busy", "unable to open", "disk I/O", "full")
    ):
        return errors.ServiceUnavailable("events", f"SQLite events {where}: {text}")
    return errors.InternalServerError("events", f"SQLite events {where}: {text}")


class _Worker(threading.Thread):
    def __init__(
        self,
        path: Path | None,
        jobs: queue.SimpleQueue[_Job],
        sweep_interval: float,
        max_age: float | None,
        max_events: int | None,
    ) -> None:
        super().__init__(name="micro-events-sqlite", daemon=True)
        self.path = path
        self.jobs = jobs
        self.sweep_interval = sweep_interval
        self.max_age = max_age
        self.max_events = max_events
        self.ready: asyncio.Future[None] | None = None
        self.conn: sqlite3.Connection | None = None

    def where(self) -> str:
        return str(self.path) if self.path else "(memory)"

    def open(self) -> sqlite3.Connection:
        target = str(self.path) if self.path is not None else ":memory:"
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        if self.path is not None:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        for statement in _SCHEMA:
            conn.execute(statement)
        # Groups of one (no name) live as long as their consumer: none survive a restart.
        conn.execute('DELETE FROM groups WHERE substr("group", 1, 1) = ?', (_EPHEMERAL,))
        conn.execute('DELETE FROM pending WHERE substr("group", 1, 1) = ?', (_EPHEMERAL,))
        return conn

    def run(self) -> None:
        conn = self.conn
        assert conn is not None
        retention = self.max_age is not None or self.max_events is not None
        next_sweep = time.monotonic() + self.sweep_interval
        try:
            while True:
                try:
                    wait = max(next_sweep - time.monotonic(), 0) if retention else None
                    first = self.jobs.get(timeout=wait)
                except queue.Empty:
                    first = None
                if retention and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.sweep_interval
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        _sweep(conn, self.max_age, self.max_events)
                        conn.execute("COMMIT")
                    except sqlite3.Error as exc:
                        log.warning("SQLite events: sweep failed: %s", exc)
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                if first is None:
                    continue
                batch, stop = take_batch(self.jobs, first, _STOP, _BATCH)
                if batch:
                    self.apply(conn, batch)
                if stop:
                    return
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            refused = []
            while True:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not _STOP:
                    refused.append(job)
            closed = errors.ServiceUnavailable("events", f"the event stream {self.where()} closed")
            self.deliver([(job, None, closed) for job in refused])

    def apply(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        done: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    value = job.fn(conn, *job.args)
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    if isinstance(exc, sqlite3.Error):
                        exc = _failure(exc, self.where())
                    elif not isinstance(exc, errors.MicroError):
                        log.exception("SQLite events: an operation failed")
                        exc = errors.InternalServerError("events", f"SQLite events: {exc}")
                    done.append((job, None, exc))
                else:
                    conn.execute("RELEASE job")
                    done.append((job, value, None))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failed = _failure(exc, self.where())
            done = [(job, None, failed) for job in batch]
        self.deliver(done)

    @staticmethod
    def deliver(done: list[tuple[_Job, Any, BaseException | None]]) -> None:
        by_loop: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]
        ] = {}
        for job, value, exc in done:
            if job.fut is not None and job.loop is not None:
                by_loop.setdefault(job.loop, []).append((job.fut, value, exc))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, results)


# --- the stream ------------------------------------------------------------------------------


def _offset(offset: Offset | None) -> float | int | None:
    if isinstance(offset, datetime.datetime):
        return offset_time(offset)
    return offset


class SQLStream(Stream):
    """Events in one SQLite database: a file (``path``) or memory (``path`` None)."""

    def __init__(
        self,
        path: Path | None,
        *,
        max_age: float | None = None,
        max_events: int | None = None,
        sweep_interval: float = 60.0,
    ) -> None:
        if sweep_interval <= 0:
            raise ValueError("sweep_interval must be positive")
        self.path = path
        self.max_age = max_age
        self.max_events = max_events
        self._sweep_interval = sweep_interval
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._worker: _Worker | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._consumers: dict[tuple[str, str], set[_SQLConsumer]] = {}

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                raise errors.ServiceUnavailable("events", f"the event stream {self!r} is closed")
            if self._worker is not None:
                return
            if self.path is not None:
                try:
                    self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise errors.ServiceUnavailable(
                        "events", f"cannot make the events folder {self.path.parent}: {exc}"
                    ) from exc
            worker = _Worker(
                self.path, self._jobs, self._sweep_interval, self.max_age, self.max_events
            )
            try:
                worker.conn = worker.open()
            except sqlite3.Error as exc:
                raise _failure(exc, worker.where()) from exc
            worker.start()
            self._worker = worker

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise errors.ServiceUnavailable("events", f"the event stream {self!r} is closed")
        return await self._run_any(fn, *args)

    async def _run_any(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a job even while closing (the worker is still there until close() ends)."""
        if self._worker is None:
            self._start()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_Job(fn, args, fut, loop))
        return await fut

    def _wake(self, ns: str, topic: str) -> None:
        for consumer in list(self._consumers.get((ns, topic), ())):
            consumer.poke()

    async def sweep(self) -> int:
        """Apply retention now (the thread also does every ``sweep_interval`` seconds)."""
        deleted: int = await self._run(_sweep, self.max_age, self.max_events)
        return deleted

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        metadata: dict[str, str] | None = None,
        timestamp: float | None = None,
        namespace: str = "micro",
    ) -> Event:
        check_topic(topic)
        check_namespace(namespace)
        check_payload(payload)
        ts = time.time() if timestamp is None else float(timestamp)
        event: Event = await self._run(
            _append, namespace, topic, bytes(payload), dict(metadata or {}), ts
        )
        self._wake(namespace, topic)
        return event

    def consume(
        self,
        topic: str,
        *,
        group: str | None = None,
        offset: Offset | None = None,
        auto_ack: bool = True,
        ack_wait: float = 30.0,
        retry_limit: int | None = None,
        namespace: str = "micro",
    ) -> Consumer:
        check_consume(topic, group, offset, ack_wait, retry_limit, namespace)
        consumer = _SQLConsumer(
            self, namespace, topic, group, _offset(offset), auto_ack, ack_wait, retry_limit
        )
        self._consumers.setdefault((namespace, topic), set()).add(consumer)
        return consumer

    async def read(
        self,
        topic: str,
        *,
        limit: int = 250,
        offset: Offset | None = None,
        namespace: str = "micro",
    ) -> list[Event]:
        check_topic(topic)
        check_namespace(namespace)
        check_limit(limit)
        check_offset(offset)
        events: list[Event] = await self._run(_read, namespace, topic, _offset(offset), limit)
        return events

    async def topics(self, *, namespace: str = "micro") -> list[str]:
        check_namespace(namespace)
        names: list[str] = await self._run(_topics, namespace)
        return names

    async def groups(self, topic: str, *, namespace: str = "micro") -> list[Group]:
        check_topic(topic)
        check_namespace(namespace)
        found: list[Group] = await self._run(_groups, namespace, topic)
        return found

    async def reset(
        self, topic: str, group: str, *, offset: Offset | None, namespace: str = "micro"
    ) -> Group:
        check_topic(topic)
        check_group(group)
        check_namespace(namespace)
        check_offset(offset)
        moved: Group = await self._run(_reset, namespace, topic, group, _offset(offset))
        self._wake(namespace, topic)  # waiting members claim from the new position
        return moved

    async def close(self) -> None:
        with self._lock:
            was_closed, self._closed = self._closed, True
            worker = self._worker
        if was_closed:
            return
        for consumers in list(self._consumers.values()):
            for consumer in list(consumers):
                await consumer.release(closing=True)
                consumer.end()
        if worker is not None:
            self._jobs.put(_STOP)
            await asyncio.to_thread(worker.join)


class _SQLConsumer(Consumer):
    def __init__(
        self,
        stream: SQLStream,
        ns: str,
        topic: str,
        group: str | None,
        offset: float | int | None,
        auto_ack: bool,
        ack_wait: float,
        retry_limit: int | None,
    ) -> None:
        self._stream = stream
        self._ns = ns
        self._topic = topic
        self._ephemeral = group is None
        self._group = group if group is not None else f"{_EPHEMERAL}{uuid.uuid4().hex}"
        self._offset = offset
        self._auto_ack = auto_ack
        self._ack_wait = ack_wait
        self._retry_limit = retry_limit
        self._signal = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._claim: asyncio.Future[_Claim] | None = None
        self._claimed: collections.deque[tuple[Event, int]] = collections.deque()
        self._stopped = False

    def poke(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._signal.set()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._signal.set)

    def end(self) -> None:
        """Stop without waiting (the stream closes)."""
        self._stopped = True
        self.poke()
        consumers = self._stream._consumers.get((self._ns, self._topic))
        if consumers is not None:
            consumers.discard(self)
            if not consumers:
                del self._stream._consumers[(self._ns, self._topic)]

    async def next(self) -> Delivery:
        self._loop = asyncio.get_running_loop()
        while True:
            if self._stopped:
                raise StopAsyncIteration
            if self._claimed:
                event, attempt = self._claimed.popleft()
                return Delivery(event, attempt, self._acker(event.sequence))
            if self._claim is None:
                self._signal.clear()  # a wake-up from now on means: claim again
                self._claim = asyncio.ensure_future(
                    self._stream._run(
                        _claim,
                        self._ns,
                        self._topic,
                        self._group,
                        self._offset,
                        self._auto_ack,
                        self._ack_wait,
                        self._retry_limit,
                    )
                )
            # shielded: a cancelled next() leaves the claim to the next call, losing nothing
            try:
                claimed, deadline, woken = await asyncio.shield(self._claim)
            finally:
                if self._claim.done():
                    self._claim = None
            for topic in woken:
                self._stream._wake(self._ns, topic)
            if claimed:
                self._claimed.extend(claimed)
                continue
            if self._stopped:
                raise StopAsyncIteration
            timeout = None if deadline is None else max(deadline - time.time(), 0) + 0.001
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._signal.wait()

    def _acker(self, seq: int) -> Callable[[bool], Any]:
        async def ack(success: bool) -> None:
            if self._auto_ack:
                return
            woken = await self._stream._run(
                _ack, self._ns, self._topic, self._group, seq, success, self._retry_limit
            )
            for topic in woken:
                self._stream._wake(self._ns, topic)

        return ack

    async def release(self, *, closing: bool = False) -> None:
        """Give back what was claimed but not handed out (a graceful stop loses nothing and
        counts no attempt for it)."""
        claimed = [(event.sequence, attempt) for event, attempt in self._claimed]
        self._claimed.clear()
        if not claimed or self._ephemeral or (self._stream._closed and not closing):
            return
        with contextlib.suppress(errors.MicroError):
            await self._stream._run_any(_release, self._ns, self._topic, self._group, claimed)

    async def stop(self) -> None:
        if self._stopped and not self._ephemeral:
            return
        await self.release()
        self.end()
        if self._ephemeral and not self._stream._closed:
            self._ephemeral = False
            with contextlib.suppress(errors.MicroError):
                await self._stream._run(_drop_group, self._ns, self._topic, self._group)
