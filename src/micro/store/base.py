"""The store interface: a key-value store of records with TTL, in databases and tables.

A record is a key, a value (bytes), metadata and an optional expiry. Keys are ordered
lexicographically; expired records are never returned and are purged. A *database* is
a namespace's (the caller's namespace unless said otherwise) and a *table* is, inside a
service, the service's name: so two services never see each other's keys by accident
and two namespaces never at all.

Every implementation checks its input through :func:`check_record`, :func:`check_key`
and :func:`check_names`, so bad input gets the same clear error from every backend and
nothing stored is touched by a rejected call.
"""

from __future__ import annotations

import builtins
import re
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Final, Literal

import msgspec

from micro import errors

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TABLE",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "Order",
    "Record",
    "Store",
    "check_key",
    "check_names",
    "check_page",
    "check_record",
    "expires_at",
    "page",
]

DEFAULT_DATABASE: Final = "micro"
DEFAULT_TABLE: Final = "micro"
MAX_KEY_BYTES: Final = 1024
MAX_VALUE_BYTES: Final = 4 * 1024 * 1024
"""Default largest value; a store may be given another limit."""

Order = Literal["asc", "desc"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class Record(msgspec.Struct, omit_defaults=True):
    """One stored record.

    ``expiry`` is a TTL in seconds: on write, how long the record lives (0 = forever);
    on read, how long it has left.
    """

    key: str
    value: bytes = b""
    metadata: dict[str, Any] = {}
    expiry: float = 0.0


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
        self, record: Record, *, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
    ) -> None:
        """Create or replace the record at ``record.key``; durable once it returns.

        Raises BadRequest for an empty key or a negative expiry and PayloadTooLarge for a
        value over the limit, before anything is written.
        """

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
