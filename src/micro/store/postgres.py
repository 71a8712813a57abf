"""The PostgreSQL store (asyncpg): the scale-out store many servers can share.

Everything lives in one schema (``micro`` by default)::

    records(database, "table", key, value bytea, metadata jsonb, expires_at timestamptz,
            version bigint)
        primary key (database, "table", key); text in the "C" collation, so keys sort
        by code point as in every other store; a schema made before versions existed
        gets the column at start (``ADD COLUMN ... DEFAULT 1``: no rewrite)
    tables(database, "table")   every table ever written to

Expiry is on the database server's clock (``now()``), so servers with skewed clocks
agree on it. Expired records are never returned; a read that meets one deletes it, and
a sweep deletes all of them every ``sweep_interval`` seconds.

asyncpg is imported only here (the ``postgres`` extra); its exceptions never reach a
caller: :meth:`PostgresStore._failure` is the one place they become ours.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from micro import errors
from micro.store._backend import prefix_end, redact
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
    version_conflict,
)

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the postgres store needs asyncpg: pip install 'micro-python[postgres]'"
    ) from exc

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["PostgresStore"]

log = logging.getLogger("micro.store")

_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_encode_metadata = msgspec.json.Encoder().encode
_decode_metadata = msgspec.json.Decoder(dict[str, Any]).decode

# The errors that mean "the database cannot be used now" rather than "this call was bad".
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InternalClientError,  # the connection's protocol state broke
)
_BACKEND_ERRORS = (*_UNAVAILABLE, asyncpg.PostgresError)
# A pooled connection that died while idle: the pool makes a new one for the next try.
_STALE = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
)


class _OneLine(logging.Filter):
    """asyncpg's pool logs a whole traceback each time it fails to restore its floor of
    connections, which it retries with a backoff for as long as PostgreSQL is away: an
    expected condition, so a server's log gets the one line with the reason instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and str(record.msg).startswith("Failed to restore the pool"):
            reason = str(exc) or type(exc).__name__
            record.msg = f"PostgreSQL store: {record.getMessage()}: {reason}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLine())


def _left(seconds: float | None) -> float:
    return 0.0 if seconds is None else max(seconds, 0.001)


class PostgresStore(Store):
    """Records in PostgreSQL at ``address`` (``postgresql://user:pass@host:5432/db``).

    ``schema`` is where the store's tables go (made on first use); ``pool_size`` the
    most connections held; ``connect_timeout`` how long a connection attempt may take.
    """

    name = "postgres"

    def __init__(
        self,
        address: str,
        *,
        schema: str = "micro",
        max_value: int = MAX_VALUE_BYTES,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        sweep_interval: float = 60.0,
    ) -> None:
        if not _SCHEMA.fullmatch(schema):
            raise ValueError(f"invalid PostgreSQL schema name {schema!r}")
        self.address = address
        self.schema = schema
        self._max_value = max_value
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._sweep_interval = sweep_interval
        self._pool: Any = None
        self._opening: asyncio.Lock | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        self._known: set[tuple[str, str]] = set()
        s = f'"{schema}"'
        expires = "CASE WHEN $6::float8 > 0 THEN now() + $6::float8 * interval '1 second' END"
        insert = (
            f'INSERT INTO {s}.records (database, "table", key, value, metadata, expires_at, '
            f"version) VALUES ($1, $2, $3, $4, $5, {expires}, 1) "
            'ON CONFLICT (database, "table", key) DO UPDATE SET value = EXCLUDED.value, '
            "metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at, "
        )
        self._sql_write = (
            insert + "version = CASE WHEN records.expires_at <= now() THEN 1 "
            "ELSE records.version + 1 END"
        )
        # A conditional write returns the new version, or no row when the stored one differs.
        self._sql_create = (
            insert + "version = 1 WHERE records.expires_at <= now() RETURNING version"
        )
        self._sql_update = (
            f"UPDATE {s}.records SET value = $4, metadata = $5, expires_at = {expires}, "
            'version = version + 1 WHERE database = $1 AND "table" = $2 AND key = $3 '
            "AND version = $7 AND (expires_at IS NULL OR expires_at > now()) RETURNING version"
        )
        self._sql_version = (
            f'SELECT version FROM {s}.records WHERE database = $1 AND "table" = $2 AND key = $3 '
            "AND (expires_at IS NULL OR expires_at > now())"
        )
        self._sql_table = (
            f'INSERT INTO {s}.tables (database, "table") VALUES ($1, $2) ON CONFLICT DO NOTHING'
        )
        self._sql_get = (
            "SELECT value, metadata, extract(epoch FROM expires_at - now())::float8, version "
            f'FROM {s}.records WHERE database = $1 AND "table" = $2 AND key = $3'
        )
        self._sql_delete = (
            f'DELETE FROM {s}.records WHERE database = $1 AND "table" = $2 AND key = $3'
        )
        self._sql_purge = self._sql_delete + " AND expires_at <= now()"
        self._sql_range: dict[tuple[bool, bool], str] = {}
        for keys_only in (False, True):
            for desc in (False, True):
                columns = (
                    "key"
                    if keys_only
                    else "key, value, metadata, "
                    "extract(epoch FROM expires_at - now())::float8, version"
                )
                self._sql_range[keys_only, desc] = (
                    f'SELECT {columns} FROM {s}.records WHERE database = $1 AND "table" = $2 '
                    "AND (expires_at IS NULL OR expires_at > now()) "
                    "AND key >= $3 AND ($4::text IS NULL OR key < $4) AND right(key, $5) = $6 "
                    f"ORDER BY key {'DESC' if desc else 'ASC'} LIMIT $7 OFFSET $8"
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        """The server's store, at ``MICRO_STORE_ADDRESS``."""
        address = settings.store_address
        if not address or not address.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "the postgres store needs MICRO_STORE_ADDRESS=postgresql://user@host:5432/db"
                + (f" (got {redact(address)!r})" if address else "")
            )
        return cls(address, schema=settings.backend_prefix)

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.address)!r}, schema={self.schema!r})"

    # ------------------------------------------------------------------ errors

    def _failure(self, exc: BaseException) -> errors.MicroError:
        """The one place an asyncpg or socket error becomes ours."""
        where = f"PostgreSQL store at {redact(self.address)}"
        if isinstance(exc, ConnectionRefusedError):
            return errors.ServiceUnavailable(
                "store", f"{where} is not reachable: connection refused"
            )
        if isinstance(exc, TimeoutError):
            return errors.ServiceUnavailable("store", f"{where} did not answer in time")
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            return errors.ServiceUnavailable("store", f"{where} is not reachable: {reason}")
        if isinstance(exc, _UNAVAILABLE):
            return errors.ServiceUnavailable("store", f"{where} is not usable: {exc}")
        if isinstance(exc, asyncpg.DataError):
            return errors.BadRequest("store", f"{where} cannot store this: {exc}")
        return errors.InternalServerError("store", f"{where} failed: {exc}")

    # ------------------------------------------------------------------ connections

    async def _connect(self) -> Any:
        pool = self._pool
        if pool is not None:
            return pool
        if self._closed:
            raise errors.ServiceUnavailable("store", f"{self!r} is closed")
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.address,
                    min_size=1,
                    max_size=self._pool_size,
                    timeout=self._connect_timeout,
                    # Named so an operator sees whose connections these are.
                    server_settings={"application_name": f"micro-store/{self.schema}"},
                )
                try:
                    await self._setup(pool)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
                self._sweeper = asyncio.create_task(self._sweep_forever())
        return self._pool

    async def _setup(self, pool: Any) -> None:
        s = f'"{self.schema}"'
        async with pool.acquire() as conn, conn.transaction():
            # Servers starting together would race on CREATE ... IF NOT EXISTS.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"micro.store.{self.schema}"
            )
            await conn.execute(
                f"CREATE SCHEMA IF NOT EXISTS {s};"
                f"CREATE TABLE IF NOT EXISTS {s}.records ("
                ' database text COLLATE "C" NOT NULL, "table" text COLLATE "C" NOT NULL,'
                ' key text COLLATE "C" NOT NULL, value bytea NOT NULL, metadata jsonb,'
                ' expires_at timestamptz, PRIMARY KEY (database, "table", key));'
                f"CREATE INDEX IF NOT EXISTS records_expires_at ON {s}.records (expires_at)"
                " WHERE expires_at IS NOT NULL;"
                f"CREATE TABLE IF NOT EXISTS {s}.tables ("
                ' database text COLLATE "C" NOT NULL, "table" text COLLATE "C" NOT NULL,'
                ' PRIMARY KEY (database, "table"));'
                # Versions came later: a constant default adds the column without a rewrite.
                f"ALTER TABLE {s}.records ADD COLUMN IF NOT EXISTS"
                " version bigint NOT NULL DEFAULT 1;"
            )

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except errors.MicroError as exc:
                log.warning("PostgreSQL store: sweeping expired records failed: %s", exc.detail)

    async def sweep(self) -> int:
        """Delete every expired record now; returns how many there were."""
        status: str = await self._query(
            "execute", f'DELETE FROM "{self.schema}".records WHERE expires_at <= now()'
        )
        return int(status.rsplit(" ", 1)[-1])

    async def close(self) -> None:
        """Stop the sweep and close every connection."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(*_BACKEND_ERRORS):
                await asyncio.wait_for(pool.close(), 10)

    # ------------------------------------------------------------------ the store

    async def _query(self, method: str, sql: str, *args: Any) -> Any:
        """``pool.<method>(sql, *args)`` (``execute``, ``fetch``, ``fetchrow``) with
        asyncpg's errors made ours. A pooled connection found dead (a restarted server, a
        killed session) is replaced and the statement run once more: every statement of
        this store is idempotent."""
        for attempt in (1, 2):
            try:
                pool = self._pool or await self._connect()
                return await getattr(pool, method)(sql, *args)
            except _STALE as exc:
                if attempt == 2:
                    raise self._failure(exc) from exc
                log.info("PostgreSQL store: a connection was lost (%s); trying again", exc)
            except _BACKEND_ERRORS as exc:
                raise self._failure(exc) from exc
        raise AssertionError("unreachable")

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
            row = await self._query("fetchrow", self._sql_get, database, table, key)
            if row is not None and row[2] is not None and row[2] <= 0:
                await self._query("execute", self._sql_purge, database, table, key)
                row = None
            if row is None:
                raise errors.NotFound("store.Store.Read", "not found")
            rows = [(key, *row)]
        else:
            start, end = (key, prefix_end(key)) if prefix else ("", None)
            tail = key if suffix else ""
            rows = await self._query(
                "fetch",
                self._sql_range[False, order == "desc"],
                database,
                table,
                start,
                end,
                len(tail),
                tail,
                limit or None,
                offset,
            )
        return [
            Record(
                k,
                value,
                _decode_metadata(metadata) if metadata else {},
                _left(left),
                version,
            )
            for k, value, metadata, left, version in rows
        ]

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
        metadata = _encode_metadata(record.metadata).decode() if record.metadata else None
        await self._register(database, table)
        await self._query(
            "execute",
            self._sql_write,
            database,
            table,
            record.key,
            record.value,
            metadata,
            record.expiry,
        )

    async def _register(self, database: str, table: str) -> None:
        if (database, table) not in self._known:
            await self._query("execute", self._sql_table, database, table)
            self._known.add((database, table))

    async def commit(self, writes: Sequence[Write], *, database: str = DEFAULT_DATABASE) -> None:
        check_writes(writes, self._max_value)
        check_names(database, DEFAULT_TABLE)
        for table in sorted({w.table for w in writes}):
            await self._register(database, table)
        try:
            pool = self._pool or await self._connect()
            async with pool.acquire() as conn, conn.transaction():
                for w in writes:
                    r = w.record
                    metadata = _encode_metadata(r.metadata).decode() if r.metadata else None
                    args = (database, w.table, r.key, r.value, metadata, r.expiry)
                    if w.if_version is None:
                        await conn.execute(self._sql_write, *args)
                        continue
                    if w.if_version == 0:
                        got = await conn.fetchval(self._sql_create, *args)
                    else:
                        got = await conn.fetchval(self._sql_update, *args, w.if_version)
                    if got is None:  # raised inside the transaction: it rolls back
                        found = await conn.fetchval(self._sql_version, database, w.table, r.key)
                        raise version_conflict(r.key, w.if_version, found or 0)
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc

    async def delete(
        self, key: str, *, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
    ) -> None:
        check_key(key)
        check_names(database, table)
        await self._query("execute", self._sql_delete, database, table, key)

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
        rows = await self._query(
            "fetch",
            self._sql_range[True, order == "desc"],
            database,
            table,
            prefix,
            prefix_end(prefix),
            len(suffix),
            suffix,
            limit or None,
            offset,
        )
        return [row[0] for row in rows]

    async def databases(self) -> builtins.list[str]:
        rows = await self._query(
            "fetch", f'SELECT DISTINCT database FROM "{self.schema}".tables ORDER BY database'
        )
        return [row[0] for row in rows]

    async def tables(self, database: str) -> builtins.list[str]:
        check_names(database, DEFAULT_TABLE)
        rows = await self._query(
            "fetch",
            f'SELECT "table" FROM "{self.schema}".tables WHERE database = $1 ORDER BY "table"',
            database,
        )
        return [row[0] for row in rows]
