"""The tree on a store: Micro's record layout, and what happens to bad or oversized data."""

from __future__ import annotations

import os

import msgspec
import pytest

from micro import errors
from micro.config.secrets import SecretBox
from micro.config.store import StoreConfig
from micro.store.base import Record
from micro.store.memory import MemoryStore


async def test_one_record_per_namespace_in_micros_leaf_form() -> None:
    store = MemoryStore()
    config = StoreConfig(store)
    await config.set("a", {"b": 1, "c": [1, "x"], "d": None}, namespace="team")
    assert await store.list(database="micro", table="config") == ["team"]
    [record] = await store.read("team", database="micro", table="config")
    assert msgspec.json.decode(record.value) == {
        "a": {
            "b": {"value": "1", "leaf": True},
            "c": {"value": '[1,"x"]', "leaf": True},
            "d": {"value": "null", "leaf": True},
        }
    }
    assert record.metadata == {"revision": 1}


async def test_user_objects_that_look_like_leaves_round_trip() -> None:
    config = StoreConfig(MemoryStore())
    tricky = {"leaf": True, "value": "x", "secret": True}
    await config.set("t", tricky)
    assert (await config.get("t")).data == tricky
    assert (await config.get("t.leaf")).data is True
    assert (await config.get("t")).secrets == frozenset()


async def test_a_stored_null_reads_as_nothing() -> None:
    config = StoreConfig(MemoryStore())
    await config.set("n", None)
    value = await config.get("n")
    assert not value.exists
    assert value.string("d") == "d"


async def test_a_corrupt_record_is_a_clear_500_and_is_not_overwritten() -> None:
    store = MemoryStore()
    config = StoreConfig(store)
    await store.write(Record(key="micro", value=b"{not json"), database="micro", table="config")
    with pytest.raises(errors.InternalServerError, match="namespace 'micro' is corrupt"):
        await config.get("a")
    with pytest.raises(errors.InternalServerError):
        await config.set("a", 1)
    [record] = await store.read("micro", database="micro", table="config")
    assert record.value == b"{not json"
    assert not (await config.get("a", namespace="other")).exists


async def test_a_corrupt_leaf_is_a_clear_500() -> None:
    store = MemoryStore()
    config = StoreConfig(store)
    tree = {"a": {"value": "{broken", "leaf": True}, "ok": {"value": "1", "leaf": True}}
    await store.write(
        Record(key="micro", value=msgspec.json.encode(tree)), database="micro", table="config"
    )
    with pytest.raises(errors.InternalServerError, match="corrupt at 'a'"):
        await config.get("a")
    assert (await config.get("ok")).int() == 1


async def test_a_tree_too_large_for_the_store_changes_nothing() -> None:
    config = StoreConfig(MemoryStore(max_value=1000), secrets=SecretBox(os.urandom(32)))
    await config.set("small", "ok")
    with pytest.raises(errors.PayloadTooLarge, match="nothing was changed"):
        await config.set("big", "x" * 2000)
    assert (await config.get("")).data == {"small": "ok"}


async def test_closing_ends_watchers_and_refuses_new_ones() -> None:
    config = StoreConfig(MemoryStore())
    async with config.watch("a") as watcher:
        await watcher.next()
        await config.close()
        with pytest.raises(StopAsyncIteration):
            await watcher.next()
    with pytest.raises(StopAsyncIteration):
        await config.watch("a").next()
    await config.set("a", 1)
    assert (await config.get("a")).int() == 1
