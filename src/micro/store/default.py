"""The store a service uses with no set-up: its namespace's database, its own table.

Inside a running :class:`micro.Service` these functions use the ``store`` service through
that service's client, in database = the service's namespace and table = its name; a
script outside a service gets the environment's client, database = the namespace it acts
in (``MICRO_NAMESPACE``, else the environment's current one) and table ``micro``.
"""

from __future__ import annotations

import asyncio
import builtins
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from micro import errors
from micro.store.base import DEFAULT_DATABASE, DEFAULT_TABLE, Order, Record, Store

__all__ = [
    "Bound",
    "default",
    "delete",
    "list",
    "read",
    "read_value",
    "set_default",
    "write",
    "write_value",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bound:
    """A store with the database and table its calls default to."""

    store: Store
    database: str = DEFAULT_DATABASE
    table: str = DEFAULT_TABLE


_defaults: dict[asyncio.AbstractEventLoop, Bound] = {}


def set_default(store: Store, *, database: str, table: str) -> None:
    """Make ``store`` (in ``database``/``table``) what this module's functions use on this loop."""
    _defaults[asyncio.get_running_loop()] = Bound(store, database, table)


def default() -> Bound:
    """The running service's store, or the environment's ``store`` service."""
    loop = asyncio.get_running_loop()
    bound = _defaults.get(loop)
    if bound is None:
        import micro.client
        from micro.store.client import RPCStore

        for stale in [lp for lp in _defaults if lp.is_closed()]:
            del _defaults[stale]
        # Outside a service: the database of the namespace the environment's client acts
        # in (one namespace per call), as config, events and the broker do.
        client = micro.client.default()
        database = client.metadata.get("micro-namespace") or DEFAULT_DATABASE
        bound = _defaults[loop] = Bound(RPCStore(client), database)
    return bound


async def read(
    key: str,
    *,
    database: str | None = None,
    table: str | None = None,
    prefix: bool = False,
    suffix: bool = False,
    limit: int = 0,
    offset: int = 0,
    order: Order = "asc",
) -> builtins.list[Record]:
    """Read records; see :meth:`micro.store.Store.read`."""
    b = default()
    return await b.store.read(
        key,
        database=database or b.database,
        table=table or b.table,
        prefix=prefix,
        suffix=suffix,
        limit=limit,
        offset=offset,
        order=order,
    )


async def write(
    key: str,
    value: bytes | str,
    *,
    expiry: float = 0.0,
    metadata: dict[str, Any] | None = None,
    database: str | None = None,
    table: str | None = None,
    if_version: int | None = None,
) -> None:
    """Write one record (``str`` values are stored as UTF-8); ``expiry`` is a TTL in seconds.

    ``if_version``: write only while the stored record's version is that (0: only while
    there is none), else :class:`micro.errors.Conflict` and nothing is written.
    """
    b = default()
    data = value.encode() if isinstance(value, str) else value
    record = Record(key=key, value=data, metadata=metadata or {}, expiry=expiry)
    await b.store.write(
        record, database=database or b.database, table=table or b.table, if_version=if_version
    )


async def delete(key: str, *, database: str | None = None, table: str | None = None) -> None:
    """Delete one record."""
    b = default()
    await b.store.delete(key, database=database or b.database, table=table or b.table)


async def list(
    *,
    prefix: str = "",
    suffix: str = "",
    limit: int = 0,
    offset: int = 0,
    order: Order = "asc",
    database: str | None = None,
    table: str | None = None,
) -> builtins.list[str]:
    """List keys; see :meth:`micro.store.Store.list`."""
    b = default()
    return await b.store.list(
        database=database or b.database,
        table=table or b.table,
        prefix=prefix,
        suffix=suffix,
        limit=limit,
        offset=offset,
        order=order,
    )


async def write_value(
    key: str, value: Any, *, expiry: float = 0.0, if_version: int | None = None, **where: str
) -> None:
    """Write any msgspec-encodable value (Struct, dataclass, dict, ...) as JSON."""
    await write(key, msgspec.json.encode(value), expiry=expiry, if_version=if_version, **where)  # type: ignore[arg-type]


async def read_value(key: str, tp: type[T], **where: str) -> T:
    """Read the value at ``key`` decoded into ``tp``; a value that does not fit is a 400."""
    [record] = await read(key, **where)  # type: ignore[arg-type]
    try:
        return msgspec.json.decode(record.value, type=tp)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise errors.BadRequest(
            "store", f"value at {key!r} is not a {tp.__name__}: {exc}"
        ) from None
