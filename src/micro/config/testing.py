"""The config conformance suite: every implementation must pass it, the RPC client included.

Subclass :class:`ConfigSuite` and provide a ``config`` fixture able to keep secrets. Each
test works in a namespace of its own, so the suite can run against a shared server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from micro import errors
from micro.config.base import SECRET_MASK, Config, Value, Watcher

__all__ = ["ConfigSuite", "next_matching"]


def _ns() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


async def next_matching(
    watcher: Watcher, accept: Callable[[Value], bool], timeout: float = 10.0
) -> Value:
    """The first value from ``watcher`` that ``accept`` takes (watchers may skip values
    a slow reader missed, so tests wait for the state they expect, never count)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await watcher.next()
            if accept(value):
                return value


class ConfigSuite:
    """Behaviour every :class:`~micro.config.base.Config` must show."""

    async def test_missing_path_is_a_value_that_does_not_exist(self, config: Config) -> None:
        ns = _ns()
        for path in ("", "nothing", "a.b.c"):
            value = await config.get(path, namespace=ns)
            assert not value.exists
            assert value.string("dflt") == "dflt"
            assert value.int(7) == 7
        await config.set("a", 1, namespace=ns)
        assert not (await config.get("a.b", namespace=ns)).exists
        assert not (await config.get("zzz", namespace=ns)).exists

    async def test_set_then_get_scalars(self, config: Config) -> None:
        ns = _ns()
        samples = {
            "s": "héllo <b>&</b> ☃",
            "i": 42,
            "big": 2**60,
            "f": 2.2,
            "t": True,
            "l": [1, "two", {"three": 3}],
        }
        for key, sample in samples.items():
            await config.set(key, sample, namespace=ns)
        for key, sample in samples.items():
            value = await config.get(key, namespace=ns)
            assert value.exists
            assert value.data == sample
            assert value.path == key
        assert (await config.get("", namespace=ns)).data == samples

    async def test_dotted_paths_make_objects(self, config: Config) -> None:
        ns = _ns()
        await config.set("db.primary.host", "10.0.0.1", namespace=ns)
        await config.set("db.primary.port", 5432, namespace=ns)
        assert (await config.get("db", namespace=ns)).data == {
            "primary": {"host": "10.0.0.1", "port": 5432}
        }
        assert (await config.get("db.primary.port", namespace=ns)).int() == 5432

    async def test_objects_merge_deeply(self, config: Config) -> None:
        ns = _ns()
        await config.set("x", {"a": 1, "b": {"b1": 2}, "c": 3}, namespace=ns)
        await config.set("x", {"d": 4, "b": {"b2": 2.2}}, namespace=ns)
        assert (await config.get("x", namespace=ns)).data == {
            "a": 1,
            "b": {"b1": 2, "b2": 2.2},
            "c": 3,
            "d": 4,
        }
        await config.set("", {"top": True}, namespace=ns)
        assert (await config.get("", namespace=ns)).data["top"] is True
        assert (await config.get("x.b.b1", namespace=ns)).int() == 2

    async def test_scalars_and_objects_replace_each_other(self, config: Config) -> None:
        ns = _ns()
        await config.set("k", {"a": 1}, namespace=ns)
        await config.set("k", "flat", namespace=ns)
        assert (await config.get("k", namespace=ns)).data == "flat"
        await config.set("k", {"b": 2}, namespace=ns)
        assert (await config.get("k", namespace=ns)).data == {"b": 2}
        await config.set("k.b.c", 3, namespace=ns)
        assert (await config.get("k", namespace=ns)).data == {"b": {"c": 3}}
        await config.set("k", [1, 2], namespace=ns)
        await config.set("k", [3], namespace=ns)
        assert (await config.get("k", namespace=ns)).data == [3]

    async def test_delete(self, config: Config) -> None:
        ns = _ns()
        await config.set("a", {"b": 1, "c": {"d": 2}, "e": 3}, namespace=ns)
        await config.delete("a.b", namespace=ns)
        await config.delete("a.c", namespace=ns)
        await config.delete("a.never", namespace=ns)
        await config.delete("nothing.at.all", namespace=ns)
        await config.delete("x", namespace=_ns())
        assert (await config.get("a", namespace=ns)).data == {"e": 3}
        await config.delete("a.e", namespace=ns)
        assert (await config.get("a", namespace=ns)).data == {}
        await config.delete("", namespace=ns)
        assert not (await config.get("", namespace=ns)).exists

    async def test_secrets_are_masked_unless_asked_for(self, config: Config) -> None:
        ns = _ns()
        await config.set("db.user", "app", namespace=ns)
        await config.set("db.password", "hunter2", secret=True, namespace=ns)
        await config.set("db.pin", 1234, secret=True, namespace=ns)
        await config.set("keys", {"a": "x", "b": [1]}, secret=True, namespace=ns)
        masked = await config.get("", namespace=ns)
        assert masked.data == {
            "db": {"user": "app", "password": SECRET_MASK, "pin": SECRET_MASK},
            "keys": {"a": SECRET_MASK, "b": SECRET_MASK},
        }
        assert masked.secrets == {"db.password", "db.pin", "keys.a", "keys.b"}
        revealed = await config.get("", secret=True, namespace=ns)
        assert revealed.data == {
            "db": {"user": "app", "password": "hunter2", "pin": 1234},
            "keys": {"a": "x", "b": [1]},
        }
        password = await config.get("db.password", namespace=ns)
        assert password.string() == SECRET_MASK
        assert password.secrets == {""}
        assert (await config.get("db.pin", secret=True, namespace=ns)).int() == 1234
        assert (await config.get("db", namespace=ns)).secrets == {"password", "pin"}
        assert (await config.get("db.user", namespace=ns)).secrets == frozenset()
        await config.set("db.password", "plain again", namespace=ns)
        assert (await config.get("db.password", namespace=ns)).string() == "plain again"

    async def test_namespaces_are_isolated(self, config: Config) -> None:
        one, two = _ns(), _ns()
        await config.set("k", "one", namespace=one)
        await config.set("k", "two", namespace=two)
        await config.set("only", 1, namespace=one)
        assert (await config.get("k", namespace=one)).data == "one"
        assert (await config.get("k", namespace=two)).data == "two"
        assert not (await config.get("only", namespace=two)).exists
        await config.delete("", namespace=two)
        assert (await config.get("k", namespace=one)).data == "one"

    async def test_bad_input_is_rejected_and_nothing_is_lost(self, config: Config) -> None:
        ns = _ns()
        await config.set("keep", {"me": 1}, namespace=ns)
        with pytest.raises(errors.BadRequest):
            await config.set("a..b", 1, namespace=ns)
        with pytest.raises(errors.BadRequest):
            await config.set(".a", 1, namespace=ns)
        with pytest.raises(errors.BadRequest):
            await config.set("", "not an object", namespace=ns)
        with pytest.raises(errors.BadRequest):
            await config.set("x", object(), namespace=ns)
        with pytest.raises(errors.BadRequest):
            await config.set("x", 1, namespace="bad namespace!")
        with pytest.raises(errors.BadRequest):
            await config.get("a..b", namespace=ns)
        with pytest.raises(errors.BadRequest):
            await config.delete("a.", namespace=ns)
        with pytest.raises(errors.BadRequest):
            config.watch("..", namespace=ns)
        assert (await config.get("", namespace=ns)).data == {"keep": {"me": 1}}

    async def test_concurrent_writes_to_other_paths_all_land(self, config: Config) -> None:
        ns = _ns()
        await asyncio.gather(*(config.set(f"k.n{i}", i, namespace=ns) for i in range(50)))
        assert (await config.get("k", namespace=ns)).data == {f"n{i}": i for i in range(50)}

    async def test_revision_grows_with_each_change(self, config: Config) -> None:
        ns = _ns()
        first = (await config.get("", namespace=ns)).revision
        await config.set("a", 1, namespace=ns)
        second = (await config.get("", namespace=ns)).revision
        await config.delete("a", namespace=ns)
        third = (await config.get("a", namespace=ns)).revision
        assert first < second < third

    async def test_watch_starts_with_the_current_value(self, config: Config) -> None:
        ns = _ns()
        await config.set("a.b", 1, namespace=ns)
        async with config.watch("a", namespace=ns) as watcher:
            first = await asyncio.wait_for(watcher.next(), 10)
        assert first.data == {"b": 1}
        async with config.watch("missing", namespace=ns) as watcher:
            nothing = await asyncio.wait_for(watcher.next(), 10)
        assert not nothing.exists

    async def test_watch_sees_changes_at_under_and_above_its_path(self, config: Config) -> None:
        ns = _ns()
        await config.set("svc.limit", 1, namespace=ns)
        async with config.watch("svc.limit", namespace=ns) as watcher:
            assert (await asyncio.wait_for(watcher.next(), 10)).data == 1
            await config.set("svc.limit", 2, namespace=ns)
            assert (await next_matching(watcher, lambda v: v.exists)).data == 2
            await config.set("svc", {"limit": {"soft": 3}}, namespace=ns)
            changed = await next_matching(watcher, lambda v: v.data != 2)
            assert changed.data == {"soft": 3}
            await config.set("svc.limit.soft", 4, namespace=ns)
            changed = await next_matching(watcher, lambda v: v.data != {"soft": 3})
            assert changed.data == {"soft": 4}
            await config.set("svc", "replaced", namespace=ns)
            gone = await next_matching(watcher, lambda v: v.data != {"soft": 4})
            assert not gone.exists

    async def test_watch_ignores_other_paths_and_namespaces(self, config: Config) -> None:
        ns, other = _ns(), _ns()
        async with config.watch("mine", namespace=ns) as watcher:
            assert not (await asyncio.wait_for(watcher.next(), 10)).exists
            await config.set("theirs", 1, namespace=ns)
            await config.set("mine", "elsewhere", namespace=other)
            await config.set("mine", "here", namespace=ns)
            value = await asyncio.wait_for(watcher.next(), 10)
        assert value.data == "here"

    async def test_watch_sees_deletes(self, config: Config) -> None:
        ns = _ns()
        await config.set("a.b", 1, namespace=ns)
        async with config.watch("a.b", namespace=ns) as watcher:
            assert (await asyncio.wait_for(watcher.next(), 10)).exists
            await config.delete("a", namespace=ns)
            assert not (await next_matching(watcher, lambda v: not v.exists)).exists

    async def test_watch_masks_and_reveals_secrets(self, config: Config) -> None:
        ns = _ns()
        async with (
            config.watch("api", namespace=ns) as masked,
            config.watch("api", secret=True, namespace=ns) as revealed,
        ):
            assert not (await asyncio.wait_for(masked.next(), 10)).exists
            assert not (await asyncio.wait_for(revealed.next(), 10)).exists
            await config.set("api.token", "s3cr3t", secret=True, namespace=ns)
            seen = await next_matching(masked, lambda v: v.exists)
            assert seen.data == {"token": SECRET_MASK}
            assert seen.secrets == {"token"}
            seen = await next_matching(revealed, lambda v: v.exists)
            assert seen.data == {"token": "s3cr3t"}

    async def test_stopped_watcher_ends(self, config: Config) -> None:
        watcher = config.watch("x", namespace=_ns())
        await watcher.stop()
        with pytest.raises(StopAsyncIteration):
            await watcher.next()
        ns = _ns()
        async with config.watch("x", namespace=ns) as watcher:
            await asyncio.wait_for(watcher.next(), 10)
        with pytest.raises(StopAsyncIteration):
            await watcher.next()
