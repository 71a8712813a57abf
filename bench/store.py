"""The store against the raw client doing the same job, side by side in one run.

    .venv/bin/python bench/store.py [--runs 3] [--quick]

Targets (issue "Store"): the in-process SQLite store writes and reads at >= 0.7x raw
``sqlite3`` doing the same statements with the same durability (WAL, synchronous=FULL);
the PostgreSQL and Redis stores at >= 0.7x raw asyncpg / redis.asyncio doing the same
operations. Each cell is the median of ``--runs``; the store and the raw client take
turns within a run. CPU is this process's (all threads) per operation. A backend that is
not reachable is skipped with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import median_of, print_table, run_load, write_results
from micro.store.base import Record
from micro.store.sqlite import SQLiteStore

POSTGRES_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
REDIS_URL = "redis://127.0.0.1:6379/0"
CONCURRENCY = (1, 64)
VALUE = b"v" * 100

HOW = {
    "sqlite": (
        "raw sqlite3, as a typical asyncio app drives it: every operation in "
        "asyncio.to_thread (the default pool); writes on one connection behind a lock, "
        "autocommit (one transaction and one fsync per write); reads on one connection per "
        "pool thread; same file settings (WAL, synchronous=FULL), same table and statements"
    ),
    "postgres": (
        "raw asyncpg: a pool of the same size, pool.execute/fetchrow of the same "
        "INSERT .. ON CONFLICT and SELECT on the same table (prepared by asyncpg's cache)"
    ),
    "redis": (
        "raw redis.asyncio: one client; write = the same MULTI/EXEC pipeline "
        "(SET, ZREM, ZADD) of the plain value; read = GET"
    ),
}


class ProcessCpu:
    """CPU seconds of this process (every thread) over the measured window."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def start(self) -> None:
        self._start = time.process_time()

    def stop(self) -> None:
        self.seconds = time.process_time() - self._start


async def measure(
    call: Callable[[], Awaitable[Any]], concurrency: int, calls: int
) -> dict[str, float]:
    """ops/s and CPU µs per op of ``call`` under closed-loop load."""
    cpu = ProcessCpu()

    async def one() -> None:
        await call()

    result = await run_load(
        one,
        concurrency=concurrency,
        calls=calls,
        warmup=max(calls // 10, concurrency),
        max_seconds=10.0,
        window=cpu,
    )
    return {"ops_s": result.calls_per_s, "cpu_us": cpu.seconds / result.calls * 1e6}


Op = tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]
"""(write, read) of one side."""


def keys(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):08d}"


def cycling(prefix: str, size: int) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter) % size:08d}"


async def fill(write: Callable[[], Awaitable[Any]], calls: int) -> None:
    """Write ``calls`` records, 64 at a time."""
    remaining = iter(range(calls))

    async def worker() -> None:
        for _ in remaining:
            await write()

    await asyncio.gather(*(worker() for _ in range(64)))


async def compare(
    target: str,
    sides: Callable[[int], Awaitable[tuple[Op, Op, Callable[[], Awaitable[None]]]]],
    counts: dict[str, int],
    runs: int,
) -> list[dict[str, Any]]:
    """Rows for ``target``: per operation and concurrency, store vs raw, medians of runs."""
    rows: list[dict[str, Any]] = []
    turns = itertools.count()
    for concurrency in CONCURRENCY:
        for op_index, op in enumerate(("write", "read")):
            calls = counts[f"{op}_{concurrency}"]

            async def one_run(
                concurrency: int = concurrency, op_index: int = op_index, calls: int = calls
            ) -> dict[str, float]:
                store, raw, cleanup = await sides(calls)
                try:
                    if op_index == 1:  # reads need the keys written first
                        await fill(store[0], calls)
                        await fill(raw[0], calls)
                    # Take turns going first, so neither side always meets a warmer server.
                    if next(turns) % 2:
                        theirs = await measure(raw[op_index], concurrency, calls)
                        mine = await measure(store[op_index], concurrency, calls)
                    else:
                        mine = await measure(store[op_index], concurrency, calls)
                        theirs = await measure(raw[op_index], concurrency, calls)
                finally:
                    await cleanup()
                return {
                    "micro": mine["ops_s"],
                    "raw": theirs["ops_s"],
                    "micro_cpu": mine["cpu_us"],
                    "raw_cpu": theirs["cpu_us"],
                    "ratio": mine["ops_s"] / theirs["ops_s"],
                }

            medians, _ = await median_of(runs, one_run)
            rows.append(
                {
                    "target": target,
                    "op": op,
                    "concurrency": concurrency,
                    "micro ops/s": medians["micro"],
                    "raw ops/s": medians["raw"],
                    "ratio": medians["ratio"],
                    "micro cpu us/op": medians["micro_cpu"],
                    "raw cpu us/op": medians["raw_cpu"],
                }
            )
            print(f"  {target} {op} c={concurrency}: ratio {medians['ratio']:.2f}", file=sys.stderr)
    return rows


# --------------------------------------------------------------------------- sqlite


async def sqlite_sides(calls: int) -> tuple[Op, Op, Callable[[], Awaitable[None]]]:
    folder = Path(tempfile.mkdtemp(prefix="micro-bench-store-"))
    store = SQLiteStore(folder / "micro")
    write_key, read_key = keys("k"), cycling("k", calls)

    async def store_write() -> None:
        await store.write(Record(key=write_key(), value=VALUE), database="bench", table="t")

    async def store_read() -> None:
        await store.read(read_key(), database="bench", table="t")

    path = folder / "raw.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA synchronous = FULL")
    writer.execute(
        'CREATE TABLE "t:t" (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, '
        "metadata TEXT, expires REAL) WITHOUT ROWID"
    )
    lock = threading.Lock()
    local = threading.local()
    readers: list[sqlite3.Connection] = []
    raw_write_key, raw_read_key = keys("k"), cycling("k", calls)

    def write_one(key: str) -> None:
        with lock:
            writer.execute(
                'INSERT OR REPLACE INTO "t:t" (key, value, metadata, expires) VALUES (?, ?, ?, ?)',
                (key, VALUE, None, None),
            )

    def read_one(key: str) -> Any:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous = FULL")
            readers.append(conn)
        return conn.execute(
            'SELECT value, metadata, expires FROM "t:t" WHERE key = ?', (key,)
        ).fetchall()

    async def raw_write() -> None:
        await asyncio.to_thread(write_one, raw_write_key())

    async def raw_read() -> None:
        await asyncio.to_thread(read_one, raw_read_key())

    async def cleanup() -> None:
        await store.close()
        writer.close()
        for conn in readers:
            conn.close()
        shutil.rmtree(folder, ignore_errors=True)

    return (store_write, store_read), (raw_write, raw_read), cleanup


# --------------------------------------------------------------------------- postgres


async def find_postgres() -> str:
    import asyncpg

    reasons = []
    for url in POSTGRES_URLS:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except Exception as exc:  # any reason not to connect is reported, not raised
            reasons.append(f"{url}: {exc}")
            continue
        await conn.close()
        return url
    raise RuntimeError("; ".join(reasons))


async def postgres_sides(url: str, calls: int) -> tuple[Op, Op, Callable[[], Awaitable[None]]]:
    import asyncpg

    from micro.store.postgres import PostgresStore

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    store = PostgresStore(url, schema=schema)
    await store.list(database="bench", table="t")  # makes the schema and the pool
    pool = await asyncpg.create_pool(url, min_size=1, max_size=10)
    write_sql = (
        f'INSERT INTO "{schema}".records (database, "table", key, value, metadata, expires_at) '
        "VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::float8 > 0 "
        "THEN now() + $6::float8 * interval '1 second' END) "
        'ON CONFLICT (database, "table", key) DO UPDATE SET value = EXCLUDED.value, '
        "metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at"
    )
    read_sql = (
        "SELECT value, metadata, extract(epoch FROM expires_at - now())::float8 "
        f'FROM "{schema}".records WHERE database = $1 AND "table" = $2 AND key = $3'
    )
    write_key, read_key = keys("k"), cycling("k", calls)
    raw_write_key, raw_read_key = keys("k"), cycling("k", calls)

    async def store_write() -> None:
        await store.write(Record(key=write_key(), value=VALUE), database="bench", table="t")

    async def store_read() -> None:
        await store.read(read_key(), database="bench", table="t")

    async def raw_write() -> None:
        await pool.execute(write_sql, "bench-raw", "t", raw_write_key(), VALUE, None, 0.0)

    async def raw_read() -> None:
        await pool.fetchrow(read_sql, "bench-raw", "t", raw_read_key())

    async def cleanup() -> None:
        await store.close()
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()

    return (store_write, store_read), (raw_write, raw_read), cleanup


# --------------------------------------------------------------------------- redis


async def find_redis() -> str:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return REDIS_URL


async def redis_sides(url: str, calls: int) -> tuple[Op, Op, Callable[[], Awaitable[None]]]:
    import redis.asyncio

    from micro.store.redis import RedisStore

    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    store = RedisStore(url, prefix=prefix)
    client = redis.asyncio.Redis.from_url(url)
    write_key, read_key = keys("k"), cycling("k", calls)
    raw_write_key, raw_read_key = keys("k"), cycling("k", calls)
    raw_base = f"{prefix}-raw:{{bench:t}}:"

    async def store_write() -> None:
        await store.write(Record(key=write_key(), value=VALUE), database="bench", table="t")

    async def store_read() -> None:
        await store.read(read_key(), database="bench", table="t")

    async def raw_write() -> None:
        key = raw_write_key()
        pipe = client.pipeline(transaction=True)
        pipe.set(raw_base + "r:" + key, VALUE)
        pipe.zrem(raw_base + "x", key)
        pipe.zadd(raw_base + "i", {key: 0})
        await pipe.execute()

    async def raw_read() -> None:
        await client.get(raw_base + "r:" + raw_read_key())

    async def cleanup() -> None:
        await store.close()
        for pattern in (f"{prefix}:*", f"{prefix}-raw:*"):
            found = [k async for k in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(found), 1000):
                await client.delete(*found[start : start + 1000])
        await client.aclose()

    return (store_write, store_read), (raw_write, raw_read), cleanup


# --------------------------------------------------------------------------- main


async def main(runs: int, quick: bool, only: set[str]) -> None:
    scale = 0.25 if quick else 1.0

    def counts(write_1: int, write_64: int, read_1: int, read_64: int) -> dict[str, int]:
        return {
            k: max(int(v * scale), 100)
            for k, v in (
                ("write_1", write_1),
                ("write_64", write_64),
                ("read_1", read_1),
                ("read_64", read_64),
            )
        }

    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    print("store bench: medians of", runs, file=sys.stderr)
    if "sqlite" in only:
        rows += await compare("sqlite", sqlite_sides, counts(1000, 3000, 3000, 6000), runs)

    try:
        if "postgres" not in only:
            raise RuntimeError("not asked for (--only)")
        pg = await find_postgres()
    except Exception as exc:  # a missing server skips its rows, with the reason
        skipped["postgres"] = f"PostgreSQL not reachable: {exc}"
    else:
        rows += await compare(
            "postgres",
            lambda calls: postgres_sides(pg, calls),
            counts(1000, 3000, 3000, 8000),
            runs,
        )

    try:
        if "redis" not in only:
            raise RuntimeError("not asked for (--only)")
        rd = await find_redis()
    except Exception as exc:  # a missing server skips its rows, with the reason
        skipped["redis"] = f"Redis not reachable: {exc}"
    else:
        rows += await compare(
            "redis", lambda calls: redis_sides(rd, calls), counts(2000, 6000, 6000, 10000), runs
        )

    print_table(f"Store vs the raw client, same operations (medians of {runs})", rows)
    for target, reason in skipped.items():
        print(f"skipped {target}: {reason}")
    print("\nHow each raw side runs:")
    for target, how in HOW.items():
        print(f"  {target}: {how}")
    print(
        "  micro: SQLiteStore in process (writer thread with group commit, reader thread "
        "batching); PostgresStore and RedisStore as a service would use them"
    )
    path = write_results(
        "store",
        {"runs": runs, "rows": rows, "skipped": skipped, "raw": HOW, "targets": {"ratio": 0.7}},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a quarter of the calls")
    parser.add_argument(
        "--only", default="sqlite,postgres,redis", help="comma-separated targets to run"
    )
    args = parser.parse_args()
    targets = set(args.only.split(","))
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args.runs, args.quick, targets))
    else:
        uvloop.run(main(args.runs, args.quick, targets))
