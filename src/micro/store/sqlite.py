"""The SQLite store: the embedded default, durable once a write is acknowledged.

Files live in one folder (``$MICRO_HOME/server/store`` for the server): ``<database>.db``
per store database, one SQL table per store table, in WAL mode with ``synchronous =
FULL``, so a write that returned survives a crash of the process and a power loss. How
the work is spread over threads (group commit, batched reads) is told in
:mod:`micro.store._sqlite_threads`. Expired records are never returned; they are deleted
when a read meets them and by a sweep every ``sweep_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from micro import errors
from micro.store._backend import prefix_end
from micro.store._sqlite_threads import (
    COMMIT,
    DATABASES,
    DELETE,
    GET,
    PUT,
    RANGE,
    STOP,
    SWEEP,
    TABLES,
    Job,
    Reader,
    Writer,
    failure,
    sync_directory,
)
from micro.store.base import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    MAX_VALUE_BYTES,
    Order,
    Record,
    Store,
    Write,
    check_key,
    check_names,
    check_page,
    check_record,
    check_version,
    check_writes,
    expires_at,
)

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["SQLiteStore"]

_encode_metadata = msgspec.json.Encoder().encode

_NEW, _RUNNING, _CLOSED = 0, 1, 2


def _row(record: Record) -> tuple[Any, ...]:
    """A record as the writer's SQL takes it: key, value, metadata, expires."""
    metadata = _encode_metadata(record.metadata).decode() if record.metadata else None
    return (record.key, record.value, metadata, expires_at(record))


def _join(threads: builtins.list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


class SQLiteStore(Store):
    """Records in SQLite files under ``directory`` (made, mode 0700, on first use).

    ``readers`` is the number of reader threads; ``cache_size`` how many database files
    each thread keeps open; ``max_value`` the largest value accepted.
    """

    name = "sqlite"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_value: int = MAX_VALUE_BYTES,
        readers: int = 1,
        sweep_interval: float = 60.0,
        cache_size: int = 64,
    ) -> None:
        if readers < 1 or sweep_interval <= 0 or cache_size < 1:
            raise ValueError("readers and cache_size must be at least 1, sweep_interval positive")
        self.directory = Path(directory)
        self._max_value = max_value
        self._readers = readers
        self._sweep_interval = sweep_interval
        self._cache_size = cache_size
        self._writes: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._reads: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._state = _NEW
        self._inline: Reader | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteStore:
        """The server's store: files under ``$MICRO_HOME/server/store``."""
        return cls(settings.home / "server" / "store")

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.directory)!r})"

    def _start(self) -> None:
        with self._lock:
            if self._state == _CLOSED:
                raise errors.ServiceUnavailable(
                    "store", f"the SQLite store at {self.directory} is closed"
                )
            if self._state == _RUNNING:
                return
            if not self.directory.is_dir():
                try:
                    self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise errors.ServiceUnavailable(
                        "store", f"cannot make the SQLite store folder {self.directory}: {exc}"
                    ) from exc
                sync_directory(self.directory.parent)  # the new folder's name, durably
            self._threads = [
                Writer(self.directory, self._writes, self._cache_size, self._sweep_interval),
                *(
                    Reader(n, self.directory, self._reads, self._writes, self._cache_size)
                    for n in range(self._readers)
                ),
            ]
            for thread in self._threads:
                thread.start()
            self._state = _RUNNING

    async def _run(
        self, jobs: queue.SimpleQueue[Job], kind: int, database: str, table: str, args: Any
    ) -> Any:
        if self._state != _RUNNING:
            self._start()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        jobs.put(Job(kind, database, table, args, fut, loop))
        return await fut

    async def read(
        self,
        key: str,
        *,
        database: str = DEFAULT_DATABASE,
        table: str = DEFAULT_TABLE,
        prefix: bool = False,
        suffix: bool = False,
        limit: int = 0,
        offset: int = 0,
        order: Order = "asc",
    ) -> builtins.list[Record]:
        check_key(key, allow_empty=prefix or suffix)
        check_page(limit, offset, order)
        check_names(database, table)
        if not (prefix or suffix):
            if self._state == _RUNNING:
                return [self._get_here(database, table, key)]
            return [await self._run(self._reads, GET, database, table, key)]
        start, end = (key, prefix_end(key)) if prefix else ("", None)
        span = (start, end, key if suffix else "", limit, offset, order == "desc", False)
        records: builtins.list[Record] = await self._run(self._reads, RANGE, database, table, span)
        return records

    def _get_here(self, database: str, table: str, key: str) -> Record:
        """A read by key, on the event loop itself: a primary-key lookup costs a few µs,
        less than handing it to a reader thread and back (range reads still go there)."""
        reader = self._inline
        if reader is None:
            reader = self._inline = Reader(
                -1, self.directory, self._reads, self._writes, self._cache_size
            )
        try:
            return reader.get(Job(GET, database, table, key))
        except sqlite3.Error as exc:
            raise failure(exc, reader.path(database)) from None

    async def write(
        self,
        record: Record,
        *,
        database: str = DEFAULT_DATABASE,
        table: str = DEFAULT_TABLE,
        if_version: int | None = None,
    ) -> None:
        if if_version is not None:
            check_version(if_version)
            await self.commit([Write(record, table, if_version)], database=database)
            return
        check_record(record, max_value=self._max_value)
        check_names(database, table)
        await self._run(self._writes, PUT, database, table, _row(record))

    async def commit(self, writes: Sequence[Write], *, database: str = DEFAULT_DATABASE) -> None:
        check_writes(writes, self._max_value)
        check_names(database, DEFAULT_TABLE)
        rows = [(w.table, _row(w.record), w.if_version) for w in writes]
        await self._run(self._writes, COMMIT, database, writes[0].table, rows)

    async def delete(
        self, key: str, *, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
    ) -> None:
        check_key(key)
        check_names(database, table)
        await self._run(self._writes, DELETE, database, table, key)

    async def list(
        self,
        *,
        database: str = DEFAULT_DATABASE,
        table: str = DEFAULT_TABLE,
        prefix: str = "",
        suffix: str = "",
        limit: int = 0,
        offset: int = 0,
        order: Order = "asc",
    ) -> builtins.list[str]:
        check_page(limit, offset, order)
        check_names(database, table)
        span = (prefix, prefix_end(prefix), suffix, limit, offset, order == "desc", True)
        keys: builtins.list[str] = await self._run(self._reads, RANGE, database, table, span)
        return keys

    async def databases(self) -> builtins.list[str]:
        names: builtins.list[str] = await self._run(self._reads, DATABASES, "", "", None)
        return names

    async def tables(self, database: str) -> builtins.list[str]:
        check_names(database, DEFAULT_TABLE)
        names: builtins.list[str] = await self._run(self._reads, TABLES, database, "", None)
        return names

    async def sweep(self) -> int:
        """Delete every expired record now (the writer also does every ``sweep_interval``
        seconds); returns how many there were."""
        deleted: int = await self._run(self._writes, SWEEP, "", "", None)
        return deleted

    async def close(self) -> None:
        """Finish the writes already queued, then stop the threads and close the files."""
        with self._lock:
            was, self._state = self._state, _CLOSED
        if was != _RUNNING:
            return
        self._writes.put(STOP)
        for _ in range(self._readers):
            self._reads.put(STOP)
        await asyncio.to_thread(_join, self._threads)
        if self._inline is not None:
            self._inline.close_connections()
            self._inline = None
