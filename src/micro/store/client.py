"""The store as services and the CLI see it: the ``store`` RPC service behind the proxy."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from micro.rpc.client import Client
from micro.store.base import DEFAULT_DATABASE, DEFAULT_TABLE, Order, Record, Store, Write
from micro.store.proto import (
    CommitOptions,
    CommitRequest,
    DatabasesResponse,
    DeleteRequest,
    ListOptions,
    ListRequest,
    ListResponse,
    ReadOptions,
    ReadRequest,
    ReadResponse,
    TablesRequest,
    TablesResponse,
    WriteOptions,
    WriteRequest,
)

__all__ = ["RPCStore"]

_SERVICE = "store"


def _in(database: str) -> dict[str, str]:
    """A call acts in one namespace, its database's (the one the server's door checks)."""
    return {"micro-namespace": database}


class RPCStore(Store):
    """Calls the ``store`` service; what user services get by default."""

    name = "rpc"

    def __init__(self, client: Client) -> None:
        self._client = client

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
        req = ReadRequest(key, ReadOptions(database, table, prefix, suffix, limit, offset, order))
        rsp = await self._client.call(
            _SERVICE, "Store.Read", req, response_type=ReadResponse, metadata=_in(database)
        )
        records: list[Record] = rsp.records
        return records

    async def write(
        self,
        record: Record,
        *,
        database: str = DEFAULT_DATABASE,
        table: str = DEFAULT_TABLE,
        if_version: int | None = None,
    ) -> None:
        await self._client.call(
            _SERVICE,
            "Store.Write",
            WriteRequest(record, WriteOptions(database, table), if_version),
            metadata=_in(database),
        )

    async def commit(self, writes: Sequence[Write], *, database: str = DEFAULT_DATABASE) -> None:
        await self._client.call(
            _SERVICE,
            "Store.Commit",
            CommitRequest(list(writes), CommitOptions(database)),
            metadata=_in(database),
        )

    async def delete(
        self, key: str, *, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
    ) -> None:
        await self._client.call(
            _SERVICE,
            "Store.Delete",
            DeleteRequest(key, WriteOptions(database, table)),
            metadata=_in(database),
        )

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
        req = ListRequest(ListOptions(database, table, prefix, suffix, limit, offset, order))
        rsp = await self._client.call(
            _SERVICE, "Store.List", req, response_type=ListResponse, metadata=_in(database)
        )
        keys: list[str] = rsp.keys
        return keys

    async def databases(self) -> builtins.list[str]:
        rsp = await self._client.call(
            _SERVICE, "Store.Databases", {}, response_type=DatabasesResponse
        )
        databases: list[str] = rsp.databases
        return databases

    async def tables(self, database: str) -> builtins.list[str]:
        rsp = await self._client.call(
            _SERVICE,
            "Store.Tables",
            TablesRequest(database),
            response_type=TablesResponse,
            metadata=_in(database),
        )
        tables: list[str] = rsp.tables
        return tables
