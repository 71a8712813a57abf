"""Request and response types of the ``store.Store`` RPC service (Micro's names)."""

from __future__ import annotations

import msgspec

from micro.store.base import Record, Write

__all__ = [
    "CommitOptions",
    "CommitRequest",
    "DatabasesResponse",
    "DeleteRequest",
    "EmptyResponse",
    "ListOptions",
    "ListRequest",
    "ListResponse",
    "ReadOptions",
    "ReadRequest",
    "ReadResponse",
    "TablesRequest",
    "TablesResponse",
    "WriteOptions",
    "WriteRequest",
]


class WriteOptions(msgspec.Struct, omit_defaults=True, frozen=True):
    """Where: ``database`` defaults to the caller's namespace, ``table`` to ``micro``."""

    database: str = ""
    table: str = ""


class ReadOptions(msgspec.Struct, omit_defaults=True, frozen=True):
    database: str = ""
    table: str = ""
    prefix: bool = False
    suffix: bool = False
    limit: int = 0
    offset: int = 0
    order: str = "asc"


class ListOptions(msgspec.Struct, omit_defaults=True, frozen=True):
    database: str = ""
    table: str = ""
    prefix: str = ""
    suffix: str = ""
    limit: int = 0
    offset: int = 0
    order: str = "asc"


class ReadRequest(msgspec.Struct, omit_defaults=True):
    key: str = ""
    options: ReadOptions = ReadOptions()


class ReadResponse(msgspec.Struct):
    records: list[Record] = []


class WriteRequest(msgspec.Struct, omit_defaults=True):
    """``if_version``: write only while the stored version is this (0: no record)."""

    record: Record
    options: WriteOptions = WriteOptions()
    if_version: int | None = None


class CommitOptions(msgspec.Struct, omit_defaults=True, frozen=True):
    """``database`` defaults to the caller's namespace; each write names its table."""

    database: str = ""


class CommitRequest(msgspec.Struct, omit_defaults=True):
    """Writes applied all or none (``Store.Commit``)."""

    writes: list[Write]
    options: CommitOptions = CommitOptions()


class DeleteRequest(msgspec.Struct, omit_defaults=True):
    key: str
    options: WriteOptions = WriteOptions()


class ListRequest(msgspec.Struct, omit_defaults=True):
    options: ListOptions = ListOptions()


class ListResponse(msgspec.Struct):
    keys: list[str] = []


class DatabasesResponse(msgspec.Struct):
    databases: list[str] = []


class TablesRequest(msgspec.Struct, omit_defaults=True):
    database: str = ""


class TablesResponse(msgspec.Struct):
    tables: list[str] = []


class EmptyResponse(msgspec.Struct):
    pass
