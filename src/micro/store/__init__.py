"""The store block: records with TTL in databases (namespaces) and tables (services).

In a service, with no set-up::

    await micro.store.write("greeting", b"hello")
    [record] = await micro.store.read("greeting")
    await micro.store.write_value("user/1", User(name="Ann"))     # msgspec-encoded
    user = await micro.store.read_value("user/1", User)
    await micro.store.write("greeting", b"hi", if_version=record.version)  # or 409

Implementations, picked by ``MICRO_STORE``: ``sqlite`` (embedded default), ``memory``,
``postgres``, ``redis``, and ``rpc`` (the client of the ``store`` service).
"""

from micro.store.base import DEFAULT_DATABASE, DEFAULT_TABLE, Record, Store, Write
from micro.store.default import (
    default,
    delete,
    list,
    read,
    read_value,
    set_default,
    write,
    write_value,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TABLE",
    "Record",
    "Store",
    "Write",
    "default",
    "delete",
    "list",
    "read",
    "read_value",
    "set_default",
    "write",
    "write_value",
]
