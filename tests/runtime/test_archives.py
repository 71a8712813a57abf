"""Uploaded sources on the store: whole after a round trip (across chunks), replaced
cleanly, refused when damaged, gone when deleted."""

from __future__ import annotations

import os

import pytest

from micro import errors
from micro.runtime import archives
from micro.store.memory import MemoryStore


async def test_round_trip_across_chunks_and_replacement() -> None:
    store = MemoryStore()
    big = os.urandom(archives.CHUNK * 2 + 10)
    await archives.save(store, "micro", "svc", "v1", big)
    assert await archives.exists(store, "micro", "svc", "v1")
    assert await archives.load(store, "micro", "svc", "v1") == big
    await archives.save(store, "micro", "svc", "v1", b"small")
    assert await archives.load(store, "micro", "svc", "v1") == b"small"
    keys = await store.list(database="micro", table="runtime", prefix="source:")
    assert len(keys) == 1, "the replaced upload's chunks are gone"
    assert await archives.load(store, "micro", "svc", "v10") is None


async def test_a_damaged_upload_is_refused_and_delete_forgets_it() -> None:
    store = MemoryStore()
    await archives.save(store, "micro", "svc", "v1", b"payload")
    [key] = await store.list(database="micro", table="runtime", prefix="source:")
    await store.delete(key, database="micro", table="runtime")
    with pytest.raises(errors.InternalServerError, match="not intact"):
        await archives.load(store, "micro", "svc", "v1")
    await archives.delete(store, "micro", "svc", "v1")
    assert not await archives.exists(store, "micro", "svc", "v1")
