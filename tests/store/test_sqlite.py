"""What the SQLite store promises beyond the conformance suite: acknowledged writes
survive a killed process, its files and names on disk, expiry sweeps, its lifecycle."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from micro import errors
from micro.server import plugins
from micro.settings import Settings
from micro.store.base import Record
from micro.store.sqlite import SQLiteStore

WRITER = Path(__file__).with_name("sqlite_writer.py")


def _rows(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [key for (key,) in conn.execute(f'SELECT key FROM "t:{table}" ORDER BY key')]


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


async def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(tmp_path), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    acked: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(acked) < 400:
                line = await proc.stdout.readline()
                assert line, f"the writer ended early with code {await proc.wait()}"
                acked.append(line.decode().strip())
    finally:
        proc.send_signal(signal.SIGKILL)
        # Keys printed before the kill were acknowledged too.
        rest, _ = await proc.communicate()
    acked += rest.decode().split("\n")[:-1]  # whole lines only: each was one write()
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(tmp_path / "durable.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = SQLiteStore(tmp_path)
    try:
        stored = set(await store.list(database="durable", table="t"))
        assert not set(acked) - stored
        [record] = await store.read(acked[-1], database="durable", table="t")
        assert record.value == acked[-1].encode() * 8
    finally:
        await store.close()


async def test_one_file_per_database_one_table_per_table(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    try:
        await store.write(Record(key="k", value=b"1"), database="ns-one", table="users")
        await store.write(Record(key="k", value=b"2"), database="ns-one", table="orders")
        await store.write(Record(key="k", value=b"3"), database="ns.two", table="users")
    finally:
        await store.close()
    assert _files(tmp_path) == ["ns-one.db", "ns.two.db"]
    assert _rows(tmp_path / "ns-one.db", "users") == ["k"]
    assert _rows(tmp_path / "ns-one.db", "orders") == ["k"]


async def test_names_differing_in_case_are_different(tmp_path: Path) -> None:
    # SQLite identifiers (and some file systems) ignore case; store names do not.
    store = SQLiteStore(tmp_path)
    try:
        for database in ("App", "app"):
            for table in ("Users", "users"):
                value = f"{database}/{table}".encode()
                await store.write(Record(key="k", value=value), database=database, table=table)
        for database in ("App", "app"):
            assert await store.tables(database) == ["Users", "users"]
            for table in ("Users", "users"):
                [record] = await store.read("k", database=database, table=table)
                assert record.value == f"{database}/{table}".encode()
        assert await store.databases() == ["App", "app"]
    finally:
        await store.close()


async def test_reads_never_create_files(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store")
    try:
        with pytest.raises(errors.NotFound):
            await store.read("k", database="nowhere", table="t")
        assert await store.list(database="nowhere", table="t") == []
        assert await store.read("", database="nowhere", table="t", prefix=True) == []
        assert await store.tables("nowhere") == []
        await store.delete("k", database="nowhere", table="t")
        assert await store.databases() == []
    finally:
        await store.close()
    assert _files(tmp_path / "store") == []


async def test_an_expired_record_read_is_deleted(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    try:
        await store.write(Record(key="brief", value=b"x", expiry=0.2), database="d", table="t")
        await asyncio.sleep(0.3)  # the expiry is a point in time; nothing else to await
        with pytest.raises(errors.NotFound):
            await store.read("brief", database="d", table="t")
        # The purge was queued to the writer before this write: once it lands, so has that.
        await store.write(Record(key="other", value=b"y"), database="d", table="t")
        assert _rows(tmp_path / "d.db", "t") == ["other"]
    finally:
        await store.close()


async def test_the_sweep_deletes_expired_records(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    try:
        for database in ("one", "two"):
            await store.write(
                Record(key="brief", value=b"x", expiry=0.1), database=database, table="t"
            )
            await store.write(Record(key="kept", value=b"y"), database=database, table="t")
        await asyncio.sleep(0.2)  # the expiry is a point in time; nothing else to await
        assert await store.sweep() == 2
        assert _rows(tmp_path / "one.db", "t") == _rows(tmp_path / "two.db", "t") == ["kept"]
    finally:
        await store.close()


async def test_the_writer_sweeps_on_its_own(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path, sweep_interval=0.05)
    try:
        await store.write(Record(key="brief", value=b"x", expiry=0.05), database="d", table="t")
        await store.write(Record(key="kept", value=b"y"), database="d", table="t")
        await asyncio.sleep(0.5)  # several sweep periods; the sweep tells nobody
        assert _rows(tmp_path / "d.db", "t") == ["kept"]
    finally:
        await store.close()


async def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    try:
        await store.write(Record(key="k", value=b"v"), database="d", table="t")
        with sqlite3.connect(tmp_path / "d.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()


async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    await store.write(Record(key="k", value=b"v"), database="d", table="t")
    await store.close()
    await store.close()
    with pytest.raises(errors.ServiceUnavailable, match="closed"):
        await store.read("k", database="d", table="t")
    reopened = SQLiteStore(tmp_path)
    try:
        assert (await reopened.read("k", database="d", table="t"))[0].value == b"v"
    finally:
        await reopened.close()


async def test_the_plugin_keeps_files_under_micro_home(tmp_path: Path) -> None:
    store = plugins.create("store", "sqlite", Settings(home=tmp_path))
    assert isinstance(store, SQLiteStore)
    try:
        await store.write(Record(key="k", value=b"v"), database="micro", table="micro")
    finally:
        await store.close()
    directory = tmp_path / "server" / "store"
    assert (directory / "micro.db").is_file()
    assert os.stat(directory).st_mode & 0o777 == 0o700
