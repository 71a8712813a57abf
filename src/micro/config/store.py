"""Config on a store: one record per namespace holding the namespace's JSON tree.

The record lives in store table ``config`` (database ``micro``, the platform's own, so no
namespace reaches it through the store service), key = the namespace, value = the tree
in Micro's leaf encoding (see :mod:`micro.config._tree`), and metadata ``revision``: a
counter bumped by every change, which readers use to order what they hear.

Writes to a namespace are serialised in this process (read, change, write under one
lock), so concurrent writes to different paths never lose one another. Watchers are
told in-process, right after the write, under the same lock. Replicas sharing one store
tell each other through :class:`~micro.peers.Peers`: a replica that hears of a change
re-reads the namespace and tells its own watchers. Two replicas writing the same
namespace at the same instant may still race (the store has no compare-and-set).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from micro import errors
from micro.config import _tree
from micro.config._watch import SlotWatcher
from micro.config.base import (
    DEFAULT_NAMESPACE,
    Config,
    SecretError,
    Value,
    Watcher,
    check_namespace,
    normalize,
    split_path,
)
from micro.config.secrets import SecretBox
from micro.peers import Peers
from micro.store.base import Record, Store

__all__ = ["StoreConfig"]

_REVISION = "revision"


class _Watch(SlotWatcher):
    """A watcher of one path of one namespace."""

    def __init__(self, owner: StoreConfig, namespace: str, path: str, secret: bool) -> None:
        super().__init__(owner._prime, owner._release)
        self.namespace = namespace
        self.path = path
        self.parts = split_path(path)
        self.secret = secret


class StoreConfig(Config):
    """Config trees stored on any :class:`~micro.store.base.Store`.

    ``secrets`` seals and opens secret values; without it, writing or revealing a secret
    is a :class:`~micro.config.base.SecretError` (reading them masked still works).
    ``peers`` carries change notices to and from the other replicas of a cluster.
    """

    name = "store"

    def __init__(
        self,
        store: Store,
        *,
        secrets: SecretBox | None = None,
        database: str = "micro",
        table: str = "config",
        peers: Peers | None = None,
    ) -> None:
        self._store = store
        self._peers = peers
        if peers is not None:
            peers.listen("config", self._heard)
        self._secrets = secrets
        self._database = database
        self._table = table
        self._locks: dict[str, asyncio.Lock] = {}
        self._watchers: dict[str, set[_Watch]] = {}
        self._closed = False

    # -- the interface --------------------------------------------------------------------

    async def get(
        self, path: str = "", *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> Value:
        parts = split_path(path)
        check_namespace(namespace)
        tree, revision = await self._read(namespace)
        return self._value(tree, parts, path, secret, revision)

    async def set(
        self, path: str, value: Any, *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        parts = split_path(path)
        check_namespace(namespace)
        node = _tree.encode(normalize(value), self._seal if secret else None)
        if not parts and _tree.is_leaf(node):
            raise errors.BadRequest("config", "the root of a config tree can only be an object")
        async with self._lock(namespace):
            tree, revision = await self._read(namespace)
            _tree.put(tree, parts, node)
            await self._write(namespace, tree, revision + 1)

    async def delete(self, path: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        parts = split_path(path)
        check_namespace(namespace)
        async with self._lock(namespace):
            tree, revision = await self._read(namespace)
            if _tree.remove(tree, parts):
                await self._write(namespace, tree, revision + 1)

    def watch(
        self, path: str = "", *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> Watcher:
        check_namespace(namespace)
        return _Watch(self, namespace, path, secret)

    async def close(self) -> None:
        """End every watcher (and refuse new ones), so watch streams let a server stop
        at once; reads and writes still work."""
        self._closed = True
        if self._peers is not None:
            await self._peers.close()
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                await watcher.stop()

    # -- storage --------------------------------------------------------------------------

    def _lock(self, namespace: str) -> asyncio.Lock:
        lock = self._locks.get(namespace)
        if lock is None:
            lock = self._locks[namespace] = asyncio.Lock()
        return lock

    async def _read(self, namespace: str) -> tuple[_tree.Node, int]:
        try:
            [record] = await self._store.read(namespace, database=self._database, table=self._table)
        except errors.NotFound:
            return {}, 0
        try:
            tree = msgspec.json.decode(record.value)
        except msgspec.DecodeError:
            tree = None
        if not isinstance(tree, dict):
            raise errors.InternalServerError(
                "config", f"the stored config of namespace {namespace!r} is corrupt"
            )
        revision = record.metadata.get(_REVISION, 0)
        return tree, revision if isinstance(revision, int) else 0

    async def _write(self, namespace: str, tree: _tree.Node, revision: int) -> None:
        data = msgspec.json.encode(tree)
        record = Record(key=namespace, value=data, metadata={_REVISION: revision})
        try:
            await self._store.write(record, database=self._database, table=self._table)
        except errors.PayloadTooLarge:
            raise errors.PayloadTooLarge(
                "config",
                f"the config of namespace {namespace!r} would be {len(data)} bytes, "
                "over the store's limit; nothing was changed",
            ) from None
        self._notify(namespace, tree, revision)
        if self._peers is not None:
            await self._peers.announce("config", namespace)

    # -- secrets and values ---------------------------------------------------------------

    def _seal(self, text: bytes) -> str:
        if self._secrets is None:
            raise SecretError("Can't encode secret: secret key is not set")
        return self._secrets.seal(text)

    def _reveal(self, stored: str, path: str) -> bytes:
        if self._secrets is None:
            raise SecretError("Can't decode secret: secret key is not set")
        return self._secrets.open(stored, path)

    def _value(
        self, tree: _tree.Node, parts: tuple[str, ...], path: str, secret: bool, revision: int
    ) -> Value:
        node = _tree.find(tree, parts) if tree else None  # an empty namespace holds nothing
        data, secrets = _tree.render(node, path, self._reveal if secret else None)
        return Value(path=path, data=data, secrets=frozenset(secrets), revision=revision)

    # -- watching -------------------------------------------------------------------------

    async def _prime(self, watcher: SlotWatcher) -> None:
        assert isinstance(watcher, _Watch)
        if self._closed:
            watcher.end()
            return
        async with self._lock(watcher.namespace):
            tree, revision = await self._read(watcher.namespace)
            node = _tree.find(tree, watcher.parts)
            watcher.last = msgspec.json.encode(node)
            watcher.offer(self._value(tree, watcher.parts, watcher.path, watcher.secret, revision))
            self._watchers.setdefault(watcher.namespace, set()).add(watcher)

    def _release(self, watcher: SlotWatcher) -> None:
        assert isinstance(watcher, _Watch)
        watchers = self._watchers.get(watcher.namespace)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.namespace]

    async def _heard(self, namespace: str) -> None:
        """Another replica changed ``namespace``: tell this replica's watchers of it."""
        if namespace not in self._watchers:
            return
        async with self._lock(namespace):
            tree, revision = await self._read(namespace)
            self._notify(namespace, tree, revision)

    def _notify(self, namespace: str, tree: _tree.Node, revision: int) -> None:
        for watcher in list(self._watchers.get(namespace, ())):
            node = _tree.find(tree, watcher.parts)
            stored = msgspec.json.encode(node)
            if stored == watcher.last:
                continue
            watcher.last = stored
            try:
                value = self._value(tree, watcher.parts, watcher.path, watcher.secret, revision)
            except errors.MicroError as exc:
                watcher.offer(exc)
            else:
                watcher.offer(value)
