"""Replicas sharing one store and broker: a config set through one reaches the watchers of
another, and auth rules changed through one reach another's rule watchers (what the
server's door follows). Two in-process "replicas" here share a memory store and broker;
tests/cluster does the same with real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from micro.auth.base import Resource, Rule
from micro.auth.keys import KeyPair
from micro.auth.store import StoreAuth
from micro.broker.memory import MemoryBroker
from micro.config.store import StoreConfig
from micro.peers import Peers
from micro.store.memory import MemoryStore


@pytest.fixture
async def shared() -> AsyncIterator[tuple[MemoryStore, MemoryBroker]]:
    store, broker = MemoryStore(), MemoryBroker()
    yield store, broker
    await broker.close()


async def test_a_config_change_on_one_replica_reaches_anothers_watcher(
    shared: tuple[MemoryStore, MemoryBroker],
) -> None:
    store, broker = shared
    one = StoreConfig(store, peers=Peers(broker, "one"))
    two = StoreConfig(store, peers=Peers(broker, "two"))
    try:
        async with two.watch("feature") as watcher:
            assert (await asyncio.wait_for(watcher.next(), 5)).data is None
            await asyncio.sleep(0.05)  # the replicas' notice subscriptions are in place
            await one.set("feature.on", True)
            seen = await asyncio.wait_for(watcher.next(), 5)
            assert seen.data == {"on": True}
    finally:
        await one.close()
        await two.close()


async def test_a_replica_ignores_its_own_notices(
    shared: tuple[MemoryStore, MemoryBroker],
) -> None:
    _, broker = shared
    heard: list[str] = []
    peers = Peers(broker, "one")
    peers.listen("config", heard.append)
    other = Peers(broker, "two")
    try:
        await asyncio.sleep(0.05)
        await peers.announce("config", "mine")
        await other.announce("config", "theirs")
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert heard == ["theirs"]
    finally:
        await peers.close()


async def test_a_rule_change_on_one_replica_reaches_anothers_rule_watcher(
    shared: tuple[MemoryStore, MemoryBroker],
) -> None:
    store, broker = shared
    keys = KeyPair.generate()
    one = StoreAuth(store, keys, peers=Peers(broker, "one"))
    two = StoreAuth(store, keys, peers=Peers(broker, "two"))
    watcher = two.watch_rules("micro")
    try:
        assert await asyncio.wait_for(watcher.next(), 5) == "micro"  # "load now"
        await asyncio.sleep(0.05)
        rule = Rule(id="r", scope="*", resource=Resource("service", "x", "*"), access="granted")
        await one.grant(rule)
        assert await asyncio.wait_for(watcher.next(), 5) == "micro"
        assert "r" in [r.id for r in await two.rules()]
    finally:
        await watcher.stop()
        await one.close()
        await two.close()
