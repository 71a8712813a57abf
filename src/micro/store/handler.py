"""Exposes any :class:`Store` as the ``store`` RPC service (``store.Store``).

The database defaults to the caller's namespace and the table to ``micro``; auth (who may
touch which namespace's database) is enforced by the server's middleware.
"""

from __future__ import annotations

from typing import cast

from micro.rpc import context
from micro.store.base import DEFAULT_TABLE, Order
from micro.store.base import Store as StoreBackend
from micro.store.proto import (
    DatabasesResponse,
    DeleteRequest,
    EmptyResponse,
    ListRequest,
    ListResponse,
    ReadRequest,
    ReadResponse,
    TablesRequest,
    TablesResponse,
    WriteRequest,
)

__all__ = ["Store"]


def _where(database: str, table: str) -> tuple[str, str]:
    return database or context.namespace(), table or DEFAULT_TABLE


class Store:
    """The ``Store`` handler: ``Store.Read``, ``Write``, ``Delete``, ``List``, ``Databases``,
    ``Tables``."""

    def __init__(self, backend: StoreBackend) -> None:
        self._backend = backend

    async def read(self, req: ReadRequest) -> ReadResponse:
        """Records at a key, or by prefix/suffix; 404 for a missing exact key."""
        o = req.options
        database, table = _where(o.database, o.table)
        records = await self._backend.read(
            req.key,
            database=database,
            table=table,
            prefix=o.prefix,
            suffix=o.suffix,
            limit=o.limit,
            offset=o.offset,
            order=cast(Order, o.order),
        )
        return ReadResponse(records)

    async def write(self, req: WriteRequest) -> EmptyResponse:
        """Create or replace a record."""
        database, table = _where(req.options.database, req.options.table)
        await self._backend.write(req.record, database=database, table=table)
        return EmptyResponse()

    async def delete(self, req: DeleteRequest) -> EmptyResponse:
        """Remove a record (missing is fine)."""
        database, table = _where(req.options.database, req.options.table)
        await self._backend.delete(req.key, database=database, table=table)
        return EmptyResponse()

    async def list(self, req: ListRequest) -> ListResponse:
        """Keys by prefix/suffix, ordered, paged."""
        o = req.options
        database, table = _where(o.database, o.table)
        keys = await self._backend.list(
            database=database,
            table=table,
            prefix=o.prefix,
            suffix=o.suffix,
            limit=o.limit,
            offset=o.offset,
            order=cast(Order, o.order),
        )
        return ListResponse(keys)

    async def databases(self) -> DatabasesResponse:
        """Every database."""
        return DatabasesResponse(await self._backend.databases())

    async def tables(self, req: TablesRequest) -> TablesResponse:
        """The tables of a database (the caller's namespace by default)."""
        return TablesResponse(await self._backend.tables(req.database or context.namespace()))
