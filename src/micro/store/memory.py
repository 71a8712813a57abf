"""The in-memory store: the ``test`` profile's, and the reference the others are checked by."""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from dataclasses import dataclass

from micro import errors
from micro.store.base import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    Order,
    Record,
    Store,
    Write,
    check_key,
    check_names,
    check_page,
    check_version,
    check_writes,
    expires_at,
    page,
    version_conflict,
)

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Entry:
    value: bytes
    metadata: dict[str, object]
    expires: float | None
    version: int

    def record(self, key: str, now: float) -> Record:
        left = 0.0 if self.expires is None else max(self.expires - now, 0.001)
        return Record(key, self.value, dict(self.metadata), left, self.version)


def _version(entry: _Entry | None, now: float) -> int:
    """The version stored: 0 for none (or an expired one)."""
    if entry is None or (entry.expires is not None and entry.expires <= now):
        return 0
    return entry.version


class MemoryStore(Store):
    """Records in this process's memory; expired ones purged as they are met."""

    name = "memory"

    def __init__(self, *, max_value: int | None = None) -> None:
        self._data: dict[str, dict[str, dict[str, _Entry]]] = {}
        self._max_value = max_value

    def _table(self, database: str, table: str, *, create: bool = False) -> dict[str, _Entry]:
        check_names(database, table)
        if create:
            return self._data.setdefault(database, {}).setdefault(table, {})
        return self._data.get(database, {}).get(table, {})

    def _live(self, rows: dict[str, _Entry], now: float) -> builtins.list[str]:
        expired = [k for k, e in rows.items() if e.expires is not None and e.expires <= now]
        for key in expired:
            del rows[key]
        return sorted(rows)

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
        rows = self._table(database, table)
        now = time.time()
        if not (prefix or suffix):
            entry = rows.get(key)
            if entry is None or (entry.expires is not None and entry.expires <= now):
                raise errors.NotFound("store.Store.Read", "not found")
            return [entry.record(key, now)]
        keys = [
            k
            for k in self._live(rows, now)
            if (not prefix or k.startswith(key)) and (not suffix or k.endswith(key))
        ]
        if order == "desc":
            keys.reverse()
        return [rows[k].record(k, now) for k in page(keys, limit, offset)]

    async def write(
        self,
        record: Record,
        *,
        database: str = DEFAULT_DATABASE,
        table: str = DEFAULT_TABLE,
        if_version: int | None = None,
    ) -> None:
        check_version(if_version)
        await self.commit([Write(record, table, if_version)], database=database)

    async def commit(self, writes: Sequence[Write], *, database: str = DEFAULT_DATABASE) -> None:
        if self._max_value is None:
            check_writes(writes)
        else:
            check_writes(writes, self._max_value)
        now = time.time()
        # No await from the checks to the last write: nothing else runs in between.
        found = [_version(self._table(database, w.table).get(w.record.key), now) for w in writes]
        for write, version in zip(writes, found, strict=True):
            if write.if_version is not None and write.if_version != version:
                raise version_conflict(write.record.key, write.if_version, version)
        for write, version in zip(writes, found, strict=True):
            record = write.record
            rows = self._table(database, write.table, create=True)
            rows[record.key] = _Entry(
                record.value, dict(record.metadata), expires_at(record, now), version + 1
            )

    async def delete(
        self, key: str, *, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
    ) -> None:
        check_key(key)
        self._table(database, table).pop(key, None)

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
        keys = [
            k
            for k in self._live(self._table(database, table), time.time())
            if k.startswith(prefix) and k.endswith(suffix)
        ]
        if order == "desc":
            keys.reverse()
        return page(keys, limit, offset)

    async def databases(self) -> builtins.list[str]:
        return sorted(db for db, tables in self._data.items() if tables)

    async def tables(self, database: str) -> builtins.list[str]:
        return sorted(self._data.get(database, {}))
