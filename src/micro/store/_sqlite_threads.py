"""The threads behind :class:`~micro.store.sqlite.SQLiteStore`, and all of its SQL.

sqlite3 blocks, so it runs off the event loop. One *writer* thread per store applies
every write in *group commit*: it takes all the jobs queued while it was busy, applies
them in one transaction per database file, and resolves each caller's future only after
that transaction's ``COMMIT`` (``synchronous = FULL``: on disk, power loss included).
Concurrent writers so share one fsync instead of queueing for one each. *Reader* threads
take queued reads in batches on connections of their own (WAL: readers never wait for
the writer). Both hand results back to the event loop with one wake-up per batch.

Layout: one file ``<database>.db`` per store database, one SQL table per store table
(``"t:<table>"``, key order, ``WITHOUT ROWID``; columns key, value, metadata, expires,
version), each with a partial index on the expiry of the records that have one. A table
made before versions existed gets its ``version`` column (default 1) from the writer on
its first write there (``ALTER TABLE ... ADD COLUMN``: no rewrite of the rows); until
then readers read its records as version 1. A conditional write or a commit of several
writes is one job: its version checks and its writes happen in the writer's transaction,
and a conflict fails that job alone. Names were checked by the store (no quotes can be in them)
and are still quoted; upper case is escaped (:func:`~micro.store._backend.encode_name`)
because SQLite does not tell ``Users`` from ``users``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

import msgspec

from micro import errors
from micro._batch import take_batch
from micro.store._backend import decode_name, encode_name
from micro.store.base import Record, version_conflict

__all__ = [
    "COMMIT",
    "DATABASES",
    "DELETE",
    "GET",
    "PURGE",
    "PUT",
    "RANGE",
    "STOP",
    "SWEEP",
    "TABLES",
    "Job",
    "Reader",
    "Writer",
    "failure",
    "sync_directory",
]

log = logging.getLogger("micro.store")

_TABLE_PREFIX: Final = "t:"
_BATCH: Final = 1024

# Writer job kinds; ``args`` is the row (key, value, metadata, expires), the key, the key,
# nothing, and a list of (table, row, if_version or None).
PUT: Final = 1
DELETE: Final = 2
PURGE: Final = 3
SWEEP: Final = 4
COMMIT: Final = 5
# Reader job kinds; ``args`` is the key, a range (see Reader.range), nothing, nothing.
GET: Final = 11
RANGE: Final = 12
TABLES: Final = 13
DATABASES: Final = 14

_decode_metadata = msgspec.json.Decoder(dict[str, Any]).decode


def _ident(table: str) -> str:
    return f'"{_TABLE_PREFIX}{encode_name(table)}"'


def failure(exc: sqlite3.Error, path: Path) -> errors.MicroError:
    """The one place an sqlite3 error becomes ours: what the caller sees instead of it."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in text for word in ("locked", "busy", "unable to open", "disk I/O", "full")
    ):
        return errors.ServiceUnavailable("store", f"SQLite store file {path}: {text}")
    return errors.InternalServerError("store", f"SQLite store file {path}: {text}")


class Job:
    """One operation for a thread, and the future (on ``loop``) waiting for its result."""

    __slots__ = ("args", "database", "fut", "kind", "loop", "table")

    def __init__(
        self,
        kind: int,
        database: str,
        table: str,
        args: Any = None,
        fut: asyncio.Future[Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.kind = kind
        self.database = database
        self.table = table
        self.args = args
        self.fut = fut
        self.loop = loop


STOP: Final = Job(0, "", "")
"""Put on a queue to make one of its threads close its connections and end."""

_Done = list[tuple[Job, Any, BaseException | None]]
_Result = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _settle(results: list[_Result]) -> None:
    for fut, value, exc in results:
        if fut.done():  # the caller was cancelled; nobody to tell
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


def _deliver(done: _Done) -> None:
    """Resolve the jobs' futures: one call into each event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
    for job, value, exc in done:
        if job.fut is not None and job.loop is not None:
            by_loop.setdefault(job.loop, []).append((job.fut, value, exc))
    for loop, results in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, results)


def sync_directory(directory: Path) -> None:
    """Make a new file's name in ``directory`` durable too, not only its content."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Db:
    """One open database file on one thread: its connection, its tables and which of
    them have a ``version`` column."""

    __slots__ = ("conn", "tables", "versioned")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.tables: set[str] = set()
        self.versioned: set[str] = set()
        self.reload_tables()

    def reload_tables(self) -> None:
        rows = self.conn.execute(
            "SELECT m.name, max(p.name = 'version') FROM sqlite_master AS m "
            "JOIN pragma_table_info(m.name) AS p "
            "WHERE m.type = 'table' AND substr(m.name, 1, 2) = ? GROUP BY m.name",
            (_TABLE_PREFIX,),
        ).fetchall()
        self.tables = {f'"{name}"' for name, _ in rows}
        self.versioned = {f'"{name}"' for name, versioned in rows if versioned}

    def ensure(self, table: str, encoded: str) -> None:
        """Make ``table`` (in the open transaction) or give it its version column."""
        if table not in self.tables:
            _create_table(self.conn, table, encoded)
            self.tables.add(table)
            self.versioned.add(table)
        elif table not in self.versioned:
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
            self.versioned.add(table)


class _Worker(threading.Thread):
    """Takes jobs from ``jobs`` in batches and applies them on connections of its own."""

    def __init__(
        self, name: str, directory: Path, jobs: queue.SimpleQueue[Job], cache_size: int
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.directory = directory
        self.jobs = jobs
        self._cache_size = cache_size
        self._dbs: OrderedDict[str, _Db] = OrderedDict()

    def path(self, database: str) -> Path:
        return self.directory / f"{encode_name(database)}.db"

    def db(self, database: str, *, create: bool = False) -> _Db | None:
        """The database file, opened now if need be; ``None`` when it does not exist and
        ``create`` is false (a read never makes a file)."""
        db = self._dbs.get(database)
        if db is not None:
            self._dbs.move_to_end(database)
            return db
        path = self.path(database)
        existed = path.exists()
        if not existed and not create:
            return None
        conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
        try:
            self.configure(conn)
            db = _Db(conn)
        except BaseException:
            conn.close()
            raise
        if not existed:
            sync_directory(self.directory)
        self._dbs[database] = db
        if len(self._dbs) > self._cache_size:
            _, oldest = self._dbs.popitem(last=False)
            oldest.conn.close()
        return db

    def configure(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 5000")

    def next_job(self) -> Job | None:
        """The next job, waiting for it; ``None`` when there is none to do yet."""
        return self.jobs.get()

    def run(self) -> None:
        try:
            while True:
                first = self.next_job()
                if first is None:
                    continue
                batch, stop = take_batch(self.jobs, first, STOP, _BATCH)
                try:
                    if batch:
                        self.apply(batch)
                except Exception as exc:  # a bug: the thread must live on and answer
                    log.exception("SQLite store: %s failed", self.name)
                    bug = errors.InternalServerError("store", f"SQLite store: {exc}")
                    _deliver([(job, None, bug) for job in batch])
                if stop:
                    return
        finally:
            for db in self._dbs.values():
                with contextlib.suppress(sqlite3.Error):
                    db.conn.close()
            self._dbs.clear()
            self._refuse_the_rest()

    def _refuse_the_rest(self) -> None:
        """Answer jobs queued after the store closed (another loop's calls may race with
        ``close``), leaving other threads' stop marks for them."""
        stops, refused = 0, []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is STOP:
                stops += 1
            else:
                refused.append(job)
        for _ in range(stops):
            self.jobs.put(STOP)
        closed = f"the SQLite store at {self.directory} is closed"
        _deliver([(job, None, errors.ServiceUnavailable("store", closed)) for job in refused])

    def apply(self, batch: list[Job]) -> None:
        raise NotImplementedError


class Writer(_Worker):
    """Applies writes in group commit; sweeps expired records every ``sweep_interval``."""

    def __init__(
        self, directory: Path, jobs: queue.SimpleQueue[Job], cache_size: int, sweep_interval: float
    ) -> None:
        super().__init__("micro-store-sqlite-writer", directory, jobs, cache_size)
        self._sweep_interval = sweep_interval
        self._next_sweep = time.monotonic() + sweep_interval

    def configure(self, conn: sqlite3.Connection) -> None:
        super().configure(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")

    def next_job(self) -> Job | None:
        wait = self._next_sweep - time.monotonic()
        if wait <= 0:
            self.sweep()
            wait = self._sweep_interval
        try:
            return self.jobs.get(timeout=wait)
        except queue.Empty:
            return None

    def apply(self, batch: list[Job]) -> None:
        by_database: dict[str, list[Job]] = {}
        sweeps: list[Job] = []
        for job in batch:
            if job.kind == SWEEP:
                sweeps.append(job)
            else:
                by_database.setdefault(job.database, []).append(job)
        done: _Done = []
        if sweeps:
            deleted = self.sweep()
            done.extend((job, deleted, None) for job in sweeps)
        for database, jobs in by_database.items():
            conflicts: dict[int, errors.MicroError] = {}
            try:
                conflicts = self._commit(database, jobs)
            except sqlite3.Error as exc:
                if len(jobs) == 1:
                    done.append((jobs[0], None, failure(exc, self.path(database))))
                    continue
                # One job spoiled the batch: apply them one by one so the others land.
                for job in jobs:
                    try:
                        one_conflict = self._commit(database, [job]).get(id(job))
                    except sqlite3.Error as one:
                        done.append((job, None, failure(one, self.path(database))))
                    else:
                        done.append((job, None, one_conflict))
            except Exception as exc:  # a bug, not the disk: still answer every caller
                log.exception("SQLite store: writing to %s failed", database)
                bug = errors.InternalServerError("store", f"SQLite store: {exc}")
                done.extend((job, None, bug) for job in jobs)
            else:
                done.extend((job, None, conflicts.get(id(job))) for job in jobs)
        _deliver(done)

    def _commit(self, database: str, jobs: list[Job]) -> dict[int, errors.MicroError]:
        """Apply ``jobs`` in one transaction; the version conflicts, by ``id(job)``."""
        conflicts: dict[int, errors.MicroError] = {}
        db = self.db(database, create=any(job.kind in (PUT, COMMIT) for job in jobs))
        if db is None:  # only deletes, in a database never written to: nothing to do
            return conflicts
        conn = db.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            i = 0
            while i < len(jobs):
                job = jobs[i]
                table = _ident(job.table)
                i += 1
                if job.kind == PUT:
                    # Consecutive writes to one table go in one executemany.
                    rows = [(*job.args, now)]
                    while i < len(jobs) and jobs[i].kind == PUT and jobs[i].table == job.table:
                        rows.append((*jobs[i].args, now))
                        i += 1
                    db.ensure(table, encode_name(job.table))
                    conn.executemany(_upsert(table), rows)
                elif job.kind == COMMIT:
                    conflict = _conditional(db, job.args, now)
                    if conflict is not None:
                        conflicts[id(job)] = conflict
                elif table not in db.tables:
                    continue
                elif job.kind == DELETE:
                    conn.execute(f"DELETE FROM {table} WHERE key = ?", (job.args,))
                else:  # PURGE: the key, if it is still expired (it may be rewritten since)
                    conn.execute(
                        f"DELETE FROM {table} WHERE key = ? AND expires <= ?",
                        (job.args, time.time()),
                    )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            with contextlib.suppress(sqlite3.Error):
                db.reload_tables()  # a table made in the rolled back transaction is gone
            raise
        return conflicts

    def sweep(self) -> int:
        """Delete every expired record of every database file in the folder; how many."""
        self._next_sweep = time.monotonic() + self._sweep_interval
        now = time.time()
        try:
            files = sorted(self.directory.glob("*.db"))
        except OSError:
            return 0
        deleted = 0
        for file in files:
            try:
                db = self.db(decode_name(file.name[: -len(".db")]))
                if db is None or not db.tables:
                    continue
                db.conn.execute("BEGIN IMMEDIATE")
                try:
                    for table in db.tables:
                        cursor = db.conn.execute(f"DELETE FROM {table} WHERE expires <= ?", (now,))
                        deleted += max(cursor.rowcount, 0)
                    db.conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                log.warning("SQLite store: sweeping %s failed: %s", file, exc)
        return deleted


def _upsert(table: str) -> str:
    """Write a row (key, value, metadata, expires, now): version 1 for a new (or expired)
    record, one more than the stored one otherwise."""
    return (
        f"INSERT INTO {table} (key, value, metadata, expires, version) VALUES (?, ?, ?, ?, 1) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, "
        "expires = excluded.expires, "
        "version = CASE WHEN expires <= ?5 THEN 1 ELSE version + 1 END"
    )


def _conditional(
    db: _Db, writes: list[tuple[str, tuple[Any, ...], int | None]], now: float
) -> errors.MicroError | None:
    """Apply one commit job's writes if every version matches (in the open transaction);
    the conflict, and nothing written, when one does not."""
    for table, row, if_version in writes:
        if if_version is None:
            continue
        ident = _ident(table)
        found = 0
        if ident in db.tables:
            column = "version" if ident in db.versioned else "1"
            got = db.conn.execute(
                f"SELECT {column}, expires FROM {ident} WHERE key = ?", (row[0],)
            ).fetchone()
            if got is not None and (got[1] is None or got[1] > now):
                found = got[0]
        if found != if_version:
            return version_conflict(row[0], if_version, found)
    for table, row, _ in writes:
        ident = _ident(table)
        db.ensure(ident, encode_name(table))
        db.conn.execute(_upsert(ident), (*row, now))
    return None


def _create_table(conn: sqlite3.Connection, table: str, encoded: str) -> None:
    # WITHOUT ROWID: records live in key order, which every list and prefix read wants.
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY NOT NULL, "
        "value BLOB NOT NULL, metadata TEXT, expires REAL, "
        "version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID"
    )
    # Only records with a TTL are indexed: the sweep is cheap, plain writes pay nothing.
    conn.execute(
        f'CREATE INDEX IF NOT EXISTS "x:{encoded}" ON {table} (expires) WHERE expires IS NOT NULL'
    )


def _version(db: _Db, table: str) -> str:
    """The column to read a record's version from: a constant 1 in a table not upgraded."""
    return "version" if _ident(table) in db.versioned else "1"


def _left(expires: float | None, now: float) -> float:
    return 0.0 if expires is None else max(expires - now, 0.001)


class Reader(_Worker):
    """Runs reads in batches. A read that meets an expired record asks the writer (on
    ``purges``) to delete it."""

    def __init__(
        self,
        number: int,
        directory: Path,
        jobs: queue.SimpleQueue[Job],
        purges: queue.SimpleQueue[Job],
        cache_size: int,
    ) -> None:
        super().__init__(f"micro-store-sqlite-reader-{number}", directory, jobs, cache_size)
        self._purges = purges

    def configure(self, conn: sqlite3.Connection) -> None:
        super().configure(conn)
        conn.execute("PRAGMA query_only = ON")

    def close_connections(self) -> None:
        """Close the files this reader opened (for a reader used without its thread)."""
        for db in self._dbs.values():
            with contextlib.suppress(sqlite3.Error):
                db.conn.close()
        self._dbs.clear()

    def apply(self, batch: list[Job]) -> None:
        done: _Done = []
        for job in batch:
            try:
                if job.kind == GET:
                    value: Any = self.get(job)
                elif job.kind == RANGE:
                    value = self.range(job)
                elif job.kind == TABLES:
                    value = self.tables(job.database)
                else:
                    value = self.databases()
            except errors.MicroError as exc:
                done.append((job, None, exc))
            except sqlite3.Error as exc:
                done.append((job, None, failure(exc, self.path(job.database))))
            except Exception as exc:  # a bug, not the disk: still answer the caller
                log.exception("SQLite store: reading from %s failed", job.database)
                done.append(
                    (job, None, errors.InternalServerError("store", f"SQLite store: {exc}"))
                )
            else:
                done.append((job, value, None))
        _deliver(done)

    def _table(self, database: str, table: str) -> _Db | None:
        """The open file that has ``table``; ``None`` when either does not exist."""
        db = self.db(database)
        if db is None:
            return None
        if _ident(table) not in db.versioned:
            db.reload_tables()  # the writer may have made or upgraded it since we looked
            if _ident(table) not in db.tables:
                return None
        return db

    def get(self, job: Job) -> Record:
        key: str = job.args
        db = self._table(job.database, job.table)
        rows = (
            db.conn.execute(
                f"SELECT value, metadata, expires, {_version(db, job.table)} "
                f"FROM {_ident(job.table)} WHERE key = ?",
                (key,),
            ).fetchall()
            if db is not None
            else None
        )
        if not rows:
            raise errors.NotFound("store.Store.Read", "not found")
        value, metadata, expires, version = rows[0]
        now = time.time()
        if expires is not None and expires <= now:
            self._purges.put(Job(PURGE, job.database, job.table, key))
            raise errors.NotFound("store.Store.Read", "not found")
        meta = _decode_metadata(metadata) if metadata else {}
        return Record(key, value, meta, _left(expires, now), version)

    def range(self, job: Job) -> list[Record] | list[str]:
        """``args``: (start, end or None, suffix, limit, offset, descending, keys only)."""
        start, end, suffix, limit, offset, desc, keys_only = job.args
        db = self._table(job.database, job.table)
        if db is None:
            return []
        now = time.time()
        where = "(expires IS NULL OR expires > ?) AND key >= ?"
        params: list[Any] = [now, start]
        if end is not None:
            where += " AND key < ?"
            params.append(end)
        if suffix:
            # substr counts characters as Python does; wildcards mean nothing to it.
            where += " AND substr(key, ?) = ?"
            params += [-len(suffix), suffix]
        params += [limit or -1, offset]
        columns = (
            "key" if keys_only else f"key, value, metadata, expires, {_version(db, job.table)}"
        )
        order = "DESC" if desc else "ASC"
        rows = db.conn.execute(
            f"SELECT {columns} FROM {_ident(job.table)} WHERE {where} "
            f"ORDER BY key {order} LIMIT ? OFFSET ?",
            params,
        ).fetchall()
        if keys_only:
            return [key for (key,) in rows]
        return [
            Record(
                key,
                value,
                _decode_metadata(metadata) if metadata else {},
                _left(expires, now),
                version,
            )
            for key, value, metadata, expires, version in rows
        ]

    def tables(self, database: str) -> list[str]:
        db = self.db(database)
        if db is None:
            return []
        db.reload_tables()
        return sorted(decode_name(t[1 + len(_TABLE_PREFIX) : -1]) for t in db.tables)

    def databases(self) -> list[str]:
        try:
            files = list(self.directory.glob("*.db"))
        except OSError:
            return []
        names = [decode_name(file.name[: -len(".db")]) for file in files]
        return sorted(name for name in names if self.tables(name))
