"""The rules of every namespace, on a store: keys ``rules/<ns>/<id>``.

A namespace that never had a rule changed has the virtual :data:`DEFAULT_RULE`. Its first
change writes that default for real along with the marker ``rulesSet/<ns>``; from then
on the stored rules are the whole truth, so a deleted ``default`` stays deleted.
"""

from __future__ import annotations

import asyncio

import msgspec

from micro import errors
from micro.auth._checks import check_id, check_namespace, check_rule
from micro.auth._watch import RulesHub
from micro.auth.base import DEFAULT_RULE, Rule, RulesWatcher
from micro.store.base import Record, Store

__all__ = ["RuleBook"]

_encode = msgspec.json.Encoder().encode
_decode_rule = msgspec.json.Decoder(Rule).decode


class RuleBook:
    """Rules by namespace, with in-process change notifications."""

    def __init__(self, store: Store, database: str, table: str) -> None:
        self._store = store
        self._database = database
        self._table = table
        self._locks: dict[str, asyncio.Lock] = {}
        self.hub = RulesHub()

    def _lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    async def _exists(self, key: str) -> bool:
        try:
            await self._store.read(key, database=self._database, table=self._table)
        except errors.NotFound:
            return False
        return True

    async def _write(self, key: str, value: bytes) -> None:
        await self._store.write(Record(key, value), database=self._database, table=self._table)

    async def _materialize(self, namespace: str) -> None:
        """Make the virtual default real, once (under the namespace's lock)."""
        if await self._exists(f"rulesSet/{namespace}"):
            return
        await self._write(f"rules/{namespace}/{DEFAULT_RULE.id}", _encode(DEFAULT_RULE))
        await self._write(f"rulesSet/{namespace}", b"1")

    async def list(self, namespace: str) -> list[Rule]:
        """The namespace's rules, by id; ``[DEFAULT_RULE]`` until one was changed."""
        check_namespace(namespace, "auth.Rules.List")
        records = await self._store.read(
            f"rules/{namespace}/", database=self._database, table=self._table, prefix=True
        )
        if records:
            return [_decode_rule(r.value) for r in records]
        if await self._exists(f"rulesSet/{namespace}"):
            return []
        return [DEFAULT_RULE]

    async def create(self, rule: Rule, namespace: str) -> None:
        """Add a rule; Conflict when its id exists."""
        check_namespace(namespace, "auth.Rules.Create")
        check_rule(rule, "auth.Rules.Create")
        async with self._lock(namespace):
            await self._materialize(namespace)
            key = f"rules/{namespace}/{rule.id}"
            if await self._exists(key):
                raise errors.Conflict("auth.Rules.Create", "A rule with this ID already exists")
            await self._write(key, _encode(rule))
        self.hub.notify(namespace)

    async def delete(self, id: str, namespace: str) -> None:
        """Remove a rule; NotFound when it does not exist."""
        check_namespace(namespace, "auth.Rules.Delete")
        check_id(id, "ID", "auth.Rules.Delete")
        async with self._lock(namespace):
            await self._materialize(namespace)
            key = f"rules/{namespace}/{id}"
            if not await self._exists(key):
                raise errors.NotFound("auth.Rules.Delete", "Rule not found")
            await self._store.delete(key, database=self._database, table=self._table)
        self.hub.notify(namespace)

    def watch(self, namespace: str | None) -> RulesWatcher:
        """A watcher of one namespace's rule changes (``None``: of all)."""
        if namespace is not None:
            check_namespace(namespace, "auth.Rules.Watch")
        return self.hub.watch(namespace)
