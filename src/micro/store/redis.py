"""The Redis store (redis.asyncio): the scale-out store for fast, shared records.

Keys, under a prefix (``micro`` by default), with the store table as a hash tag so one
table's keys stay in one cluster slot::

    <prefix>:{<database>:<table>}:r:<key>   the record: msgpack [value, metadata, expiry ms,
                                            version] (the version a fixed-width uint32 the
                                            write script sets; records written before
                                            versions existed have 3 fields: version 1)
    <prefix>:{<database>:<table>}:i         sorted set of the table's keys, all score 0:
                                            ZRANGEBYLEX gives key order and prefix ranges
    <prefix>:{<database>:<table>}:x         sorted set of the keys that expire, by expiry
    <prefix>:databases, <prefix>:tables:<database>   sets: what was written to

A write (or a commit of several) is one script, so record, index, expiry and version
agree at every moment and a version check and its write are atomic; the record
expires by Redis itself (``PXAT``); its index entry is removed by a script (atomically,
so a key rewritten meanwhile is kept) before each list or prefix read of its table and
by a sweep every ``sweep_interval`` seconds. Expiry times come from this process's
clock: servers sharing a Redis keep their clocks in sync (NTP) as for any TTL.

redis is imported only here (the ``redis`` extra); its exceptions never reach a caller:
:meth:`RedisStore._failure` is the one place they become ours.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from micro import errors
from micro.store._backend import bytes_prefix_end, redact
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
    check_version,
    check_writes,
    version_conflict,
)

try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the redis store needs redis: pip install 'micro-python[redis]'") from exc

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["RedisStore"]

log = logging.getLogger("micro.store")

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_.-]{1,64})*")

_BACKEND_ERRORS = (redis_errors.RedisError, OSError, TimeoutError)

# Drop from the index (KEYS[1]) and the expiry set (KEYS[2]) the keys expired by ARGV[1].
_CLEAN = """
local total = 0
repeat
    local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
    if #gone > 0 then
        redis.call('ZREM', KEYS[1], unpack(gone))
        redis.call('ZREM', KEYS[2], unpack(gone))
    end
    total = total + #gone
until #gone < 1000
return total
"""


# Writes, all or none: KEYS are (record, index, expiry set) per write, ARGV (blob, key,
# expires ms or 0, expected version or '') per write. Every version is checked before
# anything is written; a conflict returns {its position, the version found}. A blob ends
# with a uint32 placeholder for its version, replaced here by the stored version + 1.
_WRITE = """
local found = {}
for i = 1, #KEYS / 3 do
    local old = redis.call('GET', KEYS[3 * i - 2])
    local version = 0
    if old then
        if string.byte(old, 1) == 0x94 then
            version = struct.unpack('>I4', old, #old - 3)
        else
            version = 1
        end
    end
    local want = ARGV[4 * i]
    if want ~= '' and tonumber(want) ~= version then
        return {i, version}
    end
    found[i] = version
end
for i = 1, #KEYS / 3 do
    local blob = string.sub(ARGV[4 * i - 3], 1, -5) .. struct.pack('>I4', found[i] + 1)
    local member, expires = ARGV[4 * i - 2], tonumber(ARGV[4 * i - 1])
    if expires > 0 then
        redis.call('SET', KEYS[3 * i - 2], blob, 'PXAT', expires)
        redis.call('ZADD', KEYS[3 * i], expires, member)
    else
        redis.call('SET', KEYS[3 * i - 2], blob)
        redis.call('ZREM', KEYS[3 * i], member)
    end
    redis.call('ZADD', KEYS[3 * i - 1], 0, member)
end
return {0, 0}
"""
_PLACEHOLDER = 0xFFFFFFFF  # msgpack's uint32 form: the script swaps its 4 bytes


class _Stored(msgspec.Struct, array_like=True, omit_defaults=True):
    """A record as kept in Redis (its key is in the Redis key name)."""

    value: bytes
    metadata: dict[str, Any] = {}
    expires: int = 0
    """Unix time in ms; 0 = never."""
    version: int = 0
    """0 in a record written before versions existed: version 1."""


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Stored).decode


def _left(expires: int, now_ms: int) -> float:
    return 0.0 if not expires else max((expires - now_ms) / 1000, 0.001)


def _record(key: str, stored: _Stored, now_ms: int) -> Record:
    left = _left(stored.expires, now_ms)
    return Record(key, stored.value, stored.metadata, left, stored.version or 1)


def _refused(exc: BaseException | None) -> bool:
    """Whether ``exc`` or what caused it is a refused connection (redis words it its way)."""
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError) or "Error 111 " in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RedisStore(Store):
    """Records in Redis at ``address`` (``redis://[:password@]host:6379/0``).

    ``prefix`` starts every key the store makes (give each store sharing a Redis its
    own); ``connect_timeout`` and ``timeout`` bound a connection attempt and a command.
    """

    name = "redis"

    def __init__(
        self,
        address: str,
        *,
        prefix: str = "micro",
        max_value: int = MAX_VALUE_BYTES,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
        sweep_interval: float = 60.0,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"invalid Redis key prefix {prefix!r}: letters, digits, '_', '.', '-', ':'"
            )
        self.address = address
        self.prefix = prefix
        self._max_value = max_value
        self._sweep_interval = sweep_interval
        # A few quick retries ride out a restart; a server that is down fails in ~0.1 s.
        self._redis: Any = aioredis.Redis.from_url(
            address,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=2),
            client_name=f"micro-store/{prefix}",  # so an operator sees whose they are
        )
        self._clean_sha = ""
        self._write_script: Any = self._redis.register_script(_WRITE)
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        self._known: set[tuple[str, str]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStore:
        """The server's store, at ``MICRO_STORE_ADDRESS``."""
        address = settings.store_address
        if not address or not address.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "the redis store needs MICRO_STORE_ADDRESS=redis://host:6379/0"
                + (f" (got {redact(address)!r})" if address else "")
            )
        return cls(address, prefix=settings.backend_prefix)

    def __repr__(self) -> str:
        return f"RedisStore({redact(self.address)!r}, prefix={self.prefix!r})"

    # ------------------------------------------------------------------ names and errors

    def _table_key(self, database: str, table: str) -> str:
        return f"{self.prefix}:{{{database}:{table}}}:"

    def _failure(self, exc: BaseException) -> errors.MicroError:
        """The one place a redis or socket error becomes ours."""
        where = f"Redis store at {redact(self.address)}"
        if isinstance(exc, redis_errors.AuthenticationError):
            return errors.ServiceUnavailable("store", f"{where} refused our credentials: {exc}")
        if isinstance(exc, redis_errors.BusyLoadingError):
            return errors.ServiceUnavailable("store", f"{where} is loading its data: {exc}")
        if isinstance(exc, redis_errors.ConnectionError | OSError):
            reason = "connection refused" if _refused(exc) else str(exc)
            return errors.ServiceUnavailable("store", f"{where} is not reachable: {reason}")
        if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
            return errors.ServiceUnavailable("store", f"{where} did not answer in time")
        if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(
            ("OOM", "READONLY", "MASTERDOWN", "LOADING")
        ):
            return errors.ServiceUnavailable("store", f"{where} cannot take writes now: {exc}")
        return errors.InternalServerError("store", f"{where} failed: {exc}")

    def _ready(self) -> Any:
        if self._closed:
            raise errors.ServiceUnavailable("store", f"{self!r} is closed")
        if self._sweeper is None and self._sweep_interval:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        return self._redis

    # ------------------------------------------------------------------ expiry

    async def _clean(self, pipe: Any, base: str) -> None:
        """Queue the index clean-up of one table on ``pipe``."""
        if not self._clean_sha:
            self._clean_sha = await self._redis.script_load(_CLEAN)
        pipe.evalsha(self._clean_sha, 2, base + "i", base + "x", _now_ms())

    async def _execute(self, build: Any) -> builtins.list[Any]:
        """Run a pipeline ``build(pipe)`` fills (in order, no MULTI), loading the clean-up
        script again if the server lost it (a restart, SCRIPT FLUSH)."""
        for attempt in (1, 2):
            pipe = self._ready().pipeline(transaction=False)
            await build(pipe)
            try:
                result: builtins.list[Any] = await pipe.execute()
            except redis_errors.NoScriptError:
                if attempt == 2:
                    raise
                self._clean_sha = ""
            else:
                return result
        raise AssertionError("unreachable")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except errors.MicroError as exc:
                log.warning("Redis store: sweeping expired keys failed: %s", exc.detail)

    async def sweep(self) -> int:
        """Remove the expired keys of every table from its indexes now; returns how many
        (the records themselves are removed by Redis when they expire)."""
        removed = 0
        try:
            redis = self._ready()
            for raw_db in await redis.smembers(f"{self.prefix}:databases"):
                database = raw_db.decode()
                tables = await redis.smembers(f"{self.prefix}:tables:{database}")

                async def build(pipe: Any, database: str = database, tables: Any = tables) -> None:
                    for raw_table in tables:
                        await self._clean(pipe, self._table_key(database, raw_table.decode()))

                removed += sum(await self._execute(build))
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        return removed

    async def close(self) -> None:
        """Stop the sweep and close every connection."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        with contextlib.suppress(*_BACKEND_ERRORS):
            await self._redis.aclose()

    # ------------------------------------------------------------------ the store

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
        check_writes(writes, self._max_value)
        check_names(database, DEFAULT_TABLE)
        keys: builtins.list[str] = []
        args: builtins.list[Any] = []
        now = _now_ms()
        for w in writes:
            base, r = self._table_key(database, w.table), w.record
            expires = now + int(r.expiry * 1000) if r.expiry > 0 else 0
            keys += [base + "r:" + r.key, base + "i", base + "x"]
            blob = _encode(_Stored(r.value, r.metadata, expires, _PLACEHOLDER))
            args += [blob, r.key, expires, "" if w.if_version is None else w.if_version]
        try:
            redis = self._ready()
            position, found = await self._write_script(keys=keys, args=args, client=redis)
            new = {w.table for w in writes if (database, w.table) not in self._known}
            if not position and new:
                pipe = redis.pipeline(transaction=True)
                pipe.sadd(f"{self.prefix}:databases", database)
                pipe.sadd(f"{self.prefix}:tables:{database}", *new)
                await pipe.execute()
                self._known.update((database, table) for table in new)
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        if position:
            w = writes[position - 1]
            raise version_conflict(w.record.key, w.if_version or 0, found)

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
        base = self._table_key(database, table)
        try:
            if not (prefix or suffix):
                blob = await self._ready().get(base + "r:" + key)
                now = _now_ms()
                stored = None if blob is None else _decode(blob)
                if stored is None or (stored.expires and stored.expires <= now):
                    raise errors.NotFound("store.Store.Read", "not found")
                return [_record(key, stored, now)]
            keys = await self._keys(
                base, key if prefix else "", key if suffix else "", limit, offset, order
            )
            if not keys:
                return []
            blobs = await self._redis.mget([base + "r:" + k for k in keys])
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        now = _now_ms()
        records: builtins.list[Record] = []
        for k, blob in zip(keys, blobs, strict=True):
            if blob is None:  # expired (or deleted) since the index was read
                continue
            stored = _decode(blob)
            if stored.expires and stored.expires <= now:
                continue
            records.append(_record(k, stored, now))
        return records

    async def delete(
        self, key: str, *, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
    ) -> None:
        check_key(key)
        check_names(database, table)
        base = self._table_key(database, table)
        try:
            pipe = self._ready().pipeline(transaction=True)
            pipe.delete(base + "r:" + key)
            pipe.zrem(base + "i", key)
            pipe.zrem(base + "x", key)
            await pipe.execute()
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc

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
        try:
            return await self._keys(
                self._table_key(database, table), prefix, suffix, limit, offset, order
            )
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc

    async def _keys(
        self, base: str, prefix: str, suffix: str, limit: int, offset: int, order: Order
    ) -> builtins.list[str]:
        """Live keys of a table by prefix and suffix, in order, paged (one round trip)."""
        start = prefix.encode()
        end = bytes_prefix_end(start)
        low = b"[" + start if start else b"-"
        high = b"(" + end if end is not None else b"+"
        # A suffix is matched here, so Redis pages only when there is none.
        start_at, count = (None, None) if suffix else (offset, limit or -1)

        async def build(pipe: Any) -> None:
            await self._clean(pipe, base)
            if order == "desc":
                pipe.zrevrangebylex(base + "i", high, low, start_at, count)
            else:
                pipe.zrangebylex(base + "i", low, high, start_at, count)

        _, members = await self._execute(build)
        keys = [m.decode() for m in members]
        if suffix:
            keys = [k for k in keys if k.endswith(suffix)]
            keys = keys[offset : offset + limit] if limit else keys[offset:]
        return keys

    async def databases(self) -> builtins.list[str]:
        try:
            members = await self._ready().smembers(f"{self.prefix}:databases")
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        return sorted(m.decode() for m in members)

    async def tables(self, database: str) -> builtins.list[str]:
        check_names(database, DEFAULT_TABLE)
        try:
            members = await self._ready().smembers(f"{self.prefix}:tables:{database}")
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        return sorted(m.decode() for m in members)
