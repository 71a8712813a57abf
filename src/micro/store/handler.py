"""Exposes any :class:`Store` as the ``store`` RPC service (``store.Store``).

The database is the call's namespace (a request naming another is a 400) and the table
defaults to ``micro``; the caller must administer the database's namespace, except that a
service's own account may use the table named after it (what ``micro.store`` does), and
``Databases`` lists only the databases the caller administers.
"""

from __future__ import annotations

from typing import Final, cast

from micro import errors
from micro.auth import access
from micro.store.base import DEFAULT_TABLE, OUTBOX_SUFFIX, Order, Write
from micro.store.base import Store as StoreBackend
from micro.store.proto import (
    CommitRequest,
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


RESERVED: Final = frozenset({("micro", "auth"), ("micro", "config"), ("micro", "runtime")})
"""Tables the platform keeps its own state in (accounts, config trees, the services the
runtime runs): reached by those blocks in-process, never through the store service,
whoever asks."""


def _where(database: str, table: str, endpoint: str) -> tuple[str, str]:
    """The database and table acted on: the call's namespace (one per call); the caller
    must administer it (Micro's AuthorizeAdmin), or be the service whose table it is, and
    may not touch the platform's own tables."""
    where = (access.namespace(database, f"store.{endpoint}"), table or DEFAULT_TABLE)
    # A table's outbox (micro.events.outbox) is its service's as the table itself is.
    owner = where[1].removesuffix(OUTBOX_SUFFIX)
    if where in RESERVED or (where[0], owner) in RESERVED:
        raise errors.Forbidden("store", f"table {where[1]} of database {where[0]} is reserved")
    access.authorize_service(where[0], owner)
    return where


class Store:
    """The ``Store`` handler: ``Store.Read``, ``Write``, ``Delete``, ``List``, ``Databases``,
    ``Tables``."""

    def __init__(self, backend: StoreBackend) -> None:
        self._backend = backend

    async def read(self, req: ReadRequest) -> ReadResponse:
        """Records at a key, or by prefix/suffix; 404 for a missing exact key."""
        o = req.options
        database, table = _where(o.database, o.table, "Store.Read")
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
        """Create or replace a record; with ``if_version``, only while the stored version is
        that (409 otherwise)."""
        database, table = _where(req.options.database, req.options.table, "Store.Write")
        await self._backend.write(
            req.record, database=database, table=table, if_version=req.if_version
        )
        return EmptyResponse()

    async def commit(self, req: CommitRequest) -> EmptyResponse:
        """Several writes (each checked as a ``Write`` to its table) all or none; 409 and
        nothing written when one version differs."""
        database = req.options.database
        writes: list[Write] = []
        for w in req.writes:
            database, table = _where(req.options.database, w.table, "Store.Commit")
            writes.append(Write(w.record, table, w.if_version))
        await self._backend.commit(writes, database=database)
        return EmptyResponse()

    async def delete(self, req: DeleteRequest) -> EmptyResponse:
        """Remove a record (missing is fine)."""
        database, table = _where(req.options.database, req.options.table, "Store.Delete")
        await self._backend.delete(req.key, database=database, table=table)
        return EmptyResponse()

    async def list(self, req: ListRequest) -> ListResponse:
        """Keys by prefix/suffix, ordered, paged."""
        o = req.options
        database, table = _where(o.database, o.table, "Store.List")
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
        databases = await self._backend.databases()
        if access.enforced():
            account = access.caller()
            databases = [
                d for d in databases if account is not None and access.is_admin(account, d)
            ]
        return DatabasesResponse(databases)

    async def tables(self, req: TablesRequest) -> TablesResponse:
        """The tables of a database (the caller's namespace by default)."""
        database = access.namespace(req.database, "store.Store.Tables")
        access.authorize_admin(database)
        tables = await self._backend.tables(database)
        return TablesResponse([t for t in tables if (database, t) not in RESERVED])
