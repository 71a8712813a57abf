"""The store interface: a key-value store of records with TTL, in databases and tables.

A record is a key, a value (bytes), metadata and an optional expiry. Keys are ordered
lexicographically; expired records are never returned and are purged. A *database* is
a namespace's (the caller's namespace unless said otherwise) and a *table* is, inside a
service, the service's name: so two services never see each other's keys by accident
and two namespaces never at all.

Every implementation checks its input through :func:`check_record`, :func:`check_key`
and :func:`check_names`, so bad input gets the same clear error from every backend and
nothing stored is touched by a rejected call.

Versions (compare-and-set): every record carries a ``version``, 1 when it is created and
one more at each write; a missing (deleted or expired) record has version 0, so a record
made again starts at 1. ``write(record, if_version=N)`` writes only while the stored
version is ``N`` (``0``: only while there is none) and otherwise raises
:class:`micro.errors.Conflict` (409), writing nothing. Records written before versions
existed read as version 1. :meth:`Store.commit` applies several writes to one database
all or none (what the transactional outbox builds on).
"""

from __future__ import annotations

import builtins
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Final, Literal

import msgspec

from micro import errors

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TABLE",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "OUTBOX_SUFFIX",
    "Order",
    "Record",
    "Store",
    "Write",
    "check_key",
    "check_names",
    "check_page",
    "check_record",
    "check_version",
    "check_writes",
    "expires_at",
    "page",
    "version_conflict",
]

DEFAULT_DATABASE: Final = "micro"
DEFAULT_TABLE: Final = "micro"
OUTBOX_SUFFIX: Final = ".outbox"
"""Table ``<t>.outbox`` holds the events of table ``t``'s outbox (:mod:`micro.events.outbox`)."""
MAX_KEY_BYTES: Final = 1024
MAX_VALUE_BYTES: Final = 4 * 1024 * 1024
"""Default largest value; a store may be given another limit."""

Order = Literal["asc", "desc"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class Record(msgspec.Struct, omit_defaults=True):
    """One stored record.

    ``expiry`` is a TTL in seconds: on write, how long the record lives (0 = forever);
    on read, how long it has left. ``version`` is set on read (see the module's
    docstring) and ignored on write: a conditional write names the version it expects
    with ``if_version``.
    """

    key: str
    value: bytes = b""
    metadata: dict[str, Any] = {}
    expiry: float = 0.0
    version: int = 0


class Write(msgspec.Struct, omit_defaults=True, frozen=True):
    """One write of :meth:`Store.commit`: ``record`` into ``table``, only while its stored
    version is ``if_version`` (``None``: whatever it is)."""

    record: Record
    table: str = DEFAULT_TABLE
    if_version: int | None = None


def version_conflict(key: str, expected: int, found: int) -> errors.Conflict:
    """The error of a conditional write that found another version (nothing was written)."""
    what = "no record" if found == 0 else f"version {found}"
    want = "none" if expected == 0 else f"version {expected}"
    return errors.Conflict(
        "store.Store.Write", f"version conflict at key {key!r}: expected {want}, found {what}"
    )


def check_version(if_version: int | None) -> None:
    """A version to compare with is ``None`` or not negative."""
    if if_version is not None and if_version < 0:
        raise errors.BadRequest("store", f"if_version must not be negative (got {if_version})")


def check_writes(writes: Sequence[Write], max_value: int = MAX_VALUE_BYTES) -> None:
    """Every write of a commit is valid, and no key is written twice in it."""
    if not writes:
        raise errors.BadRequest("store", "a commit needs at least one write")
    seen: set[tuple[str, str]] = set()
    for write in writes:
        check_record(write.record, max_value=max_value)
        check_names(DEFAULT_DATABASE, write.table)
        check_version(write.if_version)
        if (write.table, write.record.key) in seen:
            raise errors.BadRequest(
                "store", f"key {write.record.key!r} of table {write.table} is written twice"
            )
        seen.add((write.table, write.record.key))


def check_names(database: str, table: str) -> None:
    """Database and table names: letters, digits, ``_ . -``; at most 128 characters."""
    for what, name in (("database", database), ("table", table)):
        if not _NAME.fullmatch(name):
            raise errors.BadRequest(
                "store",
                f"invalid {what} name {name!r}: use letters, digits, '_', '.' or '-' "
                "(at most 128, starting with a letter or digit)",
            )


def check_key(key: str, *, allow_empty: bool = False) -> None:
    """A key is a non-empty string of at most :data:`MAX_KEY_BYTES` bytes."""
    if not key and not allow_empty:
        raise errors.BadRequest("store", "key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise errors.BadRequest("store", f"key is longer than {MAX_KEY_BYTES} bytes")


def check_record(record: Record, *, max_value: int = MAX_VALUE_BYTES) -> None:
    """Reject a record no store may keep: empty key, negative TTL, value over the limit."""
    check_key(record.key)
    if record.expiry < 0:
        raise errors.BadRequest("store", f"expiry must not be negative (got {record.expiry})")
    if len(record.value) > max_value:
        raise errors.PayloadTooLarge(
            "store", f"value of {len(record.value)} bytes is over the limit of {max_value}"
        )


def check_page(limit: int, offset: int, order: str) -> None:
    """Limit and offset are not negative; order is ``asc`` or ``desc``."""
    if limit < 0 or offset < 0:
        raise errors.BadRequest("store", "limit and offset must not be negative")
    if order not in ("asc", "desc"):
        raise errors.BadRequest("store", f"order must be 'asc' or 'desc', not {order!r}")


def page(items: list[Any], limit: int, offset: int) -> builtins.list[Any]:
    """``items[offset:offset+limit]`` (``limit`` 0 = all)."""
    return items[offset : offset + limit] if limit else items[offset:]


def expires_at(record: Record, now: float | None = None) -> float | None:
    """The absolute (unix) time a record written now expires, or ``None``."""
    if record.expiry <= 0:
        return None
    return (time.time() if now is None else now) + record.expiry


class Store(ABC):
    """Records in databases and tables. Implementations: memory, sqlite, postgres, redis,
    and the rpc client of the ``store`` service."""

    name: ClassVar[str]

    @abstractmethod
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
        """The record at ``key``; or, with ``prefix``/``suffix``, every record whose key
        starts/ends with ``key`` (both: starts and ends), in key ``order``, skipping
        ``offset`` and returning at most ``limit`` (0 = all).

        An exact read of a missing key raises :class:`micro.errors.NotFound`; a prefix or
        suffix read that matches nothing returns ``[]``. An empty ``key`` is allowed only
        with ``prefix`` or ``suffix`` (it matches everything).
        """

    @abstractmethod
    async def write(
        self,
        record: Record,
        *,
        database: str = DEFAULT_DATABASE,
        table: str = DEFAULT_TABLE,
        if_version: int | None = None,
    ) -> None:
        """Create or replace the record at ``record.key``; durable once it returns.

        With ``if_version``, only while the stored version is that (0: no record), else
        :class:`micro.errors.Conflict` and nothing is written. Raises BadRequest for an
        empty key, a negative expiry or version and PayloadTooLarge for a value over the
        limit, before anything is written.
        """

    @abstractmethod
    async def commit(self, writes: Sequence[Write], *, database: str = DEFAULT_DATABASE) -> None:
        """Apply ``writes`` (to tables of one ``database``) all together or not at all:
        durable together once it returns; one version conflict raises Conflict and none is
        applied. A key may appear once per commit."""

    @abstractmethod
    async def delete(
        self, key: str, *, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
    ) -> None:
        """Remove the record at ``key``; removing a missing key is not an error."""

    @abstractmethod
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
        """Keys (not expired) that start with ``prefix`` and end with ``suffix``, in key
        ``order``, skipping ``offset``, at most ``limit`` (0 = all); ``[]`` when none."""

    @abstractmethod
    async def databases(self) -> builtins.list[str]:
        """Databases that hold at least one table, sorted."""

    @abstractmethod
    async def tables(self, database: str) -> builtins.list[str]:
        """Tables of ``database`` that were written to, sorted; ``[]`` for an unknown one."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""
