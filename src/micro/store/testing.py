"""The store conformance suite: every implementation must pass it, the RPC client included.

Subclass :class:`StoreSuite` and provide a ``store`` fixture. Each test works in a
database of its own, so the suite can run against a shared real server.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from micro import errors
from micro.store.base import MAX_VALUE_BYTES, Record, Store, Write

__all__ = ["StoreSuite"]


def _db() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


async def _fill(store: Store, db: str, keys: list[str], table: str = "t") -> None:
    for key in keys:
        await store.write(Record(key=key, value=key.encode()), database=db, table=table)


class StoreSuite:
    """Behaviour every :class:`~micro.store.base.Store` must show."""

    async def test_write_then_read(self, store: Store) -> None:
        db = _db()
        await store.write(
            Record(key="k", value=b"v", metadata={"a": "b", "n": 1}), database=db, table="t"
        )
        [rec] = await store.read("k", database=db, table="t")
        assert (rec.key, rec.value, rec.metadata, rec.expiry) == ("k", b"v", {"a": "b", "n": 1}, 0)

    async def test_binary_values_and_unicode_keys(self, store: Store) -> None:
        db = _db()
        blob = bytes(range(256)) * 4
        await store.write(Record(key="ключ/☃", value=blob), database=db, table="t")
        [rec] = await store.read("ключ/☃", database=db, table="t")
        assert rec.value == blob

    async def test_missing_key_is_not_found(self, store: Store) -> None:
        with pytest.raises(errors.NotFound):
            await store.read("nothing", database=_db(), table="t")

    async def test_overwrite_replaces(self, store: Store) -> None:
        db = _db()
        await store.write(Record(key="k", value=b"1", metadata={"x": 1}), database=db, table="t")
        await store.write(Record(key="k", value=b"2"), database=db, table="t")
        [rec] = await store.read("k", database=db, table="t")
        assert (rec.value, rec.metadata) == (b"2", {})

    async def test_delete(self, store: Store) -> None:
        db = _db()
        await _fill(store, db, ["a", "b"])
        await store.delete("a", database=db, table="t")
        await store.delete("never-there", database=db, table="t")
        with pytest.raises(errors.NotFound):
            await store.read("a", database=db, table="t")
        assert await store.list(database=db, table="t") == ["b"]

    async def test_prefix_and_suffix_reads(self, store: Store) -> None:
        db = _db()
        await _fill(store, db, ["user/1", "user/2", "user/10", "order/1", "users"])
        recs = await store.read("user/", database=db, table="t", prefix=True)
        assert [r.key for r in recs] == ["user/1", "user/10", "user/2"]
        assert [r.value for r in recs] == [b"user/1", b"user/10", b"user/2"]
        recs = await store.read("/1", database=db, table="t", suffix=True)
        assert [r.key for r in recs] == ["order/1", "user/1"]
        recs = await store.read("user", database=db, table="t", prefix=True, suffix=True)
        assert [r.key for r in recs] == []
        recs = await store.read("u", database=db, table="t", prefix=True, order="desc", limit=2)
        assert [r.key for r in recs] == ["users", "user/2"]
        recs = await store.read("u", database=db, table="t", prefix=True, offset=1, limit=2)
        assert [r.key for r in recs] == ["user/10", "user/2"]
        assert await store.read("zzz", database=db, table="t", prefix=True) == []
        everything = await store.read("", database=db, table="t", prefix=True)
        assert len(everything) == 5

    async def test_wildcard_characters_are_literal(self, store: Store) -> None:
        db = _db()
        await _fill(store, db, ["a_1", "ab1", "a%1", "a%%", "a\\b", "a*1", "a?1", "a[1]"])
        assert await store.list(database=db, table="t", prefix="a_") == ["a_1"]
        assert await store.list(database=db, table="t", prefix="a%") == ["a%%", "a%1"]
        assert await store.list(database=db, table="t", suffix="%") == ["a%%"]
        assert await store.list(database=db, table="t", prefix="a\\") == ["a\\b"]
        assert await store.list(database=db, table="t", prefix="a*") == ["a*1"]
        assert await store.list(database=db, table="t", prefix="a?") == ["a?1"]
        assert await store.list(database=db, table="t", prefix="a[") == ["a[1]"]

    async def test_list_order_limit_offset(self, store: Store) -> None:
        db = _db()
        keys = [f"k{i:02d}" for i in range(12)]
        await _fill(store, db, list(reversed(keys)))
        assert await store.list(database=db, table="t") == keys
        assert await store.list(database=db, table="t", order="desc") == keys[::-1]
        assert await store.list(database=db, table="t", limit=3) == keys[:3]
        assert await store.list(database=db, table="t", offset=10) == keys[10:]
        assert await store.list(database=db, table="t", offset=2, limit=3) == keys[2:5]
        assert await store.list(database=db, table="t", prefix="k1") == keys[10:]
        assert await store.list(database=db, table="t", suffix="1") == ["k01", "k11"]
        assert await store.list(database=db, table="t", offset=50) == []

    async def test_ttl_expiry(self, store: Store) -> None:
        db = _db()
        await store.write(Record(key="brief", value=b"x", expiry=0.5), database=db, table="t")
        await store.write(Record(key="kept", value=b"y"), database=db, table="t")
        [rec] = await store.read("brief", database=db, table="t")
        assert 0 < rec.expiry <= 0.5
        await asyncio.sleep(0.7)  # the expiry is a point in time; nothing else to await
        with pytest.raises(errors.NotFound):
            await store.read("brief", database=db, table="t")
        assert await store.list(database=db, table="t") == ["kept"]
        assert [r.key for r in await store.read("", database=db, table="t", prefix=True)] == [
            "kept"
        ]
        # An expired record is no record: version 0, and made again it starts at 1.
        await store.write(Record(key="brief", value=b"z"), database=db, table="t", if_version=0)
        [rec] = await store.read("brief", database=db, table="t")
        assert (rec.value, rec.version) == (b"z", 1)

    async def test_rewrite_without_expiry_makes_it_permanent(self, store: Store) -> None:
        db = _db()
        await store.write(Record(key="k", value=b"1", expiry=0.3), database=db, table="t")
        await store.write(Record(key="k", value=b"2"), database=db, table="t")
        await asyncio.sleep(0.5)
        [rec] = await store.read("k", database=db, table="t")
        assert (rec.value, rec.expiry) == (b"2", 0)

    async def test_databases_and_tables_are_isolated_and_listed(self, store: Store) -> None:
        one, two = _db(), _db()
        await store.write(Record(key="k", value=b"one"), database=one, table="a")
        await store.write(Record(key="k", value=b"two"), database=two, table="a")
        await store.write(Record(key="k", value=b"one-b"), database=one, table="b")
        assert (await store.read("k", database=one, table="a"))[0].value == b"one"
        assert (await store.read("k", database=two, table="a"))[0].value == b"two"
        assert (await store.read("k", database=one, table="b"))[0].value == b"one-b"
        with pytest.raises(errors.NotFound):
            await store.read("k", database=two, table="b")
        assert await store.tables(one) == ["a", "b"]
        assert await store.tables(two) == ["a"]
        assert await store.tables(_db()) == []
        listed = await store.databases()
        assert one in listed
        assert two in listed
        assert listed == sorted(listed)

    async def test_bad_input_is_rejected_and_nothing_is_lost(self, store: Store) -> None:
        db = _db()
        await store.write(Record(key="k", value=b"safe"), database=db, table="t")
        with pytest.raises(errors.BadRequest):
            await store.write(Record(key="", value=b"x"), database=db, table="t")
        with pytest.raises(errors.BadRequest):
            await store.write(Record(key="k", value=b"x", expiry=-1), database=db, table="t")
        with pytest.raises(errors.PayloadTooLarge):
            await store.write(
                Record(key="k", value=b"x" * (MAX_VALUE_BYTES + 1)), database=db, table="t"
            )
        with pytest.raises(errors.BadRequest):
            await store.write(Record(key="k", value=b"x"), database=db, table="bad name;")
        with pytest.raises(errors.BadRequest):
            await store.read("", database=db, table="t")
        with pytest.raises(errors.BadRequest):
            await store.list(database=db, table="t", limit=-1)
        [rec] = await store.read("k", database=db, table="t")
        assert rec.value == b"safe"

    async def test_concurrent_writes_all_land(self, store: Store) -> None:
        db = _db()
        keys = [f"c{i:03d}" for i in range(100)]
        await asyncio.gather(
            *(store.write(Record(key=k, value=k.encode()), database=db, table="t") for k in keys)
        )
        assert await store.list(database=db, table="t") == keys

    async def test_versions_count_writes(self, store: Store) -> None:
        db = _db()
        await store.write(Record(key="k", value=b"1"), database=db, table="t")
        assert [r.version for r in await store.read("k", database=db, table="t")] == [1]
        await store.write(Record(key="k", value=b"2", version=99), database=db, table="t")
        await _fill(store, db, ["j"])
        recs = await store.read("", database=db, table="t", prefix=True)
        assert [(r.key, r.version) for r in recs] == [("j", 1), ("k", 2)]
        await store.delete("k", database=db, table="t")
        await store.write(Record(key="k", value=b"3"), database=db, table="t")
        assert [r.version for r in await store.read("k", database=db, table="t")] == [1]

    async def test_compare_and_set(self, store: Store) -> None:
        db = _db()
        await store.write(Record(key="k", value=b"a"), database=db, table="t", if_version=0)
        with pytest.raises(errors.Conflict, match="expected none, found version 1"):
            await store.write(Record(key="k", value=b"x"), database=db, table="t", if_version=0)
        await store.write(Record(key="k", value=b"b"), database=db, table="t", if_version=1)
        with pytest.raises(errors.Conflict, match="expected version 1, found version 2"):
            await store.write(Record(key="k", value=b"x"), database=db, table="t", if_version=1)
        with pytest.raises(errors.Conflict, match="found no record"):
            await store.write(Record(key="new", value=b"x"), database=db, table="t", if_version=4)
        [rec] = await store.read("k", database=db, table="t")
        assert (rec.value, rec.version) == (b"b", 2)
        with pytest.raises(errors.NotFound):
            await store.read("new", database=db, table="t")
        with pytest.raises(errors.BadRequest):
            await store.write(Record(key="k", value=b"x"), database=db, table="t", if_version=-1)

    async def test_concurrent_compare_and_set_lets_one_win(self, store: Store) -> None:
        db = _db()
        await store.write(Record(key="n", value=b"0"), database=db, table="t")

        async def bump(i: int) -> bool:
            try:
                record = Record(key="n", value=str(i).encode())
                await store.write(record, database=db, table="t", if_version=1)
            except errors.Conflict:
                return False
            return True

        wins = await asyncio.gather(*(bump(i) for i in range(10)))
        assert sum(wins) == 1
        [rec] = await store.read("n", database=db, table="t")
        assert (rec.value, rec.version) == (str(wins.index(True)).encode(), 2)

    async def test_commit_is_all_or_none(self, store: Store) -> None:
        db = _db()
        await store.commit(
            [Write(Record(key="a", value=b"1"), "t"), Write(Record(key="e", value=b"1"), "u")],
            database=db,
        )
        assert (await store.read("e", database=db, table="u"))[0].value == b"1"
        with pytest.raises(errors.Conflict):
            await store.commit(
                [
                    Write(Record(key="a", value=b"2"), "t", if_version=1),
                    Write(Record(key="f", value=b"2"), "u"),
                    Write(Record(key="e", value=b"2"), "u", if_version=0),
                ],
                database=db,
            )
        assert (await store.read("a", database=db, table="t"))[0].value == b"1"
        assert await store.list(database=db, table="u") == ["e"]
        await store.commit(
            [
                Write(Record(key="a", value=b"3"), "t", if_version=1),
                Write(Record(key="f", value=b"3"), "u", if_version=0),
            ],
            database=db,
        )
        [rec] = await store.read("a", database=db, table="t")
        assert (rec.value, rec.version) == (b"3", 2)
        assert await store.list(database=db, table="u") == ["e", "f"]
        with pytest.raises(errors.BadRequest):
            await store.commit([], database=db)
        twice = Write(Record(key="a", value=b"4"), "t")
        with pytest.raises(errors.BadRequest):
            await store.commit([twice, twice], database=db)
