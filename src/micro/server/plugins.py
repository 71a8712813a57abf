"""The plugin table: which class implements a block under which name.

Built-in names come first; a third party adds its own through the entry-point group
``micro.<block>`` (``[project.entry-points."micro.store"] mystore = "pkg.mod:MyStore"``).
An unknown name fails with the list of the names that are known.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from micro.settings import Settings

__all__ = ["BUILTIN", "create", "known", "load"]

BUILTIN: dict[str, dict[str, str]] = {
    "registry": {
        "memory": "micro.registry.memory:MemoryRegistry",
        "etcd": "micro.registry.etcd:EtcdRegistry",
        "rpc": "micro.registry.client:RPCRegistry",
    },
    "store": {
        "memory": "micro.store.memory:MemoryStore",
        "sqlite": "micro.store.sqlite:SQLiteStore",
        "postgres": "micro.store.postgres:PostgresStore",
        "redis": "micro.store.redis:RedisStore",
        "rpc": "micro.store.client:RPCStore",
    },
    "broker": {
        "memory": "micro.broker.memory:MemoryBroker",
        "nats": "micro.broker.nats:NatsBroker",
        "redis": "micro.broker.redis:RedisBroker",
        "rpc": "micro.broker.client:RPCBroker",
    },
    "events": {
        "memory": "micro.events.memory:MemoryStream",
        "sqlite": "micro.events.sqlite:SQLiteStream",
        "nats": "micro.events.nats:NatsStream",
        "redis": "micro.events.redis:RedisStream",
        "rpc": "micro.events.client:RPCStream",
    },
}


def known(block: str) -> list[str]:
    """Every plugin name available for ``block``, sorted."""
    names = set(BUILTIN.get(block, {}))
    names.update(ep.name for ep in entry_points(group=f"micro.{block}"))
    return sorted(names)


def load(block: str, name: str) -> Any:
    """The class registered for ``block`` under ``name``; ``ValueError`` if there is none."""
    if block not in BUILTIN:
        raise ValueError(f"unknown block {block!r}; known blocks: {', '.join(sorted(BUILTIN))}")
    target = BUILTIN[block].get(name)
    if target is None:
        for ep in entry_points(group=f"micro.{block}"):
            if ep.name == name:
                return ep.load()
        raise ValueError(f"unknown {block} plugin {name!r}; known: {', '.join(known(block))}")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create(block: str, name: str, settings: Settings) -> Any:
    """An instance of the plugin: ``cls.from_settings(settings)`` where the class has that
    classmethod (backends that need an address or a folder), else ``cls()``."""
    cls = load(block, name)
    factory = getattr(cls, "from_settings", None)
    return factory(settings) if factory is not None else cls()
