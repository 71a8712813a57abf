"""The config block: one JSON tree per namespace, dotted paths, merge, secrets, watch.

In a service, with no set-up (reads come from a local copy kept fresh by a watch: no
round trip per read)::

    port = micro.config.get("db.port").int(5432)
    password = micro.config.get("db.password", secret=True).string()
    await micro.config.set("feature.beta", True)
    async with micro.config.watch("feature") as changes:
        async for value in changes:
            ...

Implementations: ``store`` (:class:`~micro.config.store.StoreConfig`, the tree on a
store, what the server runs) and ``rpc`` (:class:`~micro.config.client.RPCConfig`, the
client of the ``config`` service).
"""

from micro.config.base import (
    DEFAULT_NAMESPACE,
    SECRET_MASK,
    Config,
    SecretError,
    Value,
    Watcher,
)
from micro.config.default import (
    attach,
    default,
    delete,
    detach,
    get,
    load,
    set,
    set_default,
    watch,
)
from micro.config.local import ConfigCopy

__all__ = [
    "DEFAULT_NAMESPACE",
    "SECRET_MASK",
    "Config",
    "ConfigCopy",
    "SecretError",
    "Value",
    "Watcher",
    "attach",
    "default",
    "delete",
    "detach",
    "get",
    "load",
    "set",
    "set_default",
    "watch",
]
