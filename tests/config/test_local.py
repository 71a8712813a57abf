"""The local copy a service reads from: loaded once, fresh through its watch, no RPC per
read, its own writes visible at once, secrets degraded (not broken) by a wrong key."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests._support import free_port

import micro.config
from micro import errors
from micro.config import SECRET_MASK, ConfigCopy, SecretError
from micro.config.client import RPCConfig
from micro.config.handler import Config as ConfigHandler
from micro.config.secrets import SecretBox
from micro.config.store import StoreConfig
from micro.config.testing import next_matching
from micro.rpc import Call, Client, Handler, Server, endpoints_of
from micro.store.memory import MemoryStore


@dataclass
class Platform:
    """A config service on a real socket, a second client writing to it, and a counter of
    the calls it served."""

    backend: StoreConfig
    address: str
    writer: RPCConfig
    calls: list[str] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    server: Server | None = None

    def client(self) -> Client:
        client = Client(proxy=self.address)
        self.clients.append(client)
        return client

    async def serve(self) -> None:
        async def count(call: Call, nxt: Handler) -> Any:
            self.calls.append(call.endpoint)
            return await nxt(call)

        server = Server(middleware=[count])
        server.add("config", endpoints_of(ConfigHandler(self.backend)))
        await server.start(self.address)
        self.server = server

    async def stop_serving(self) -> None:
        assert self.server is not None
        await self.backend.close()  # ends the watch streams, as the server does
        await self.server.stop(grace=0.5)
        self.backend = StoreConfig(self.backend._store, secrets=self.backend._secrets)


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    backend = StoreConfig(MemoryStore(), secrets=SecretBox(os.urandom(32)))
    plat = Platform(backend, f"127.0.0.1:{free_port()}", writer=None)  # type: ignore[arg-type]
    await plat.serve()
    plat.writer = RPCConfig(plat.client())
    yield plat
    for client in plat.clients:
        await client.close()
    if plat.server is not None:
        await plat.server.stop(grace=0.5)


@pytest.fixture
async def copy(platform: Platform) -> AsyncIterator[ConfigCopy]:
    local = ConfigCopy(RPCConfig(platform.client()), namespace="app", retry=0.05)
    yield local
    await local.close()


async def test_get_before_loading_is_a_clear_503(copy: ConfigCopy) -> None:
    with pytest.raises(errors.ServiceUnavailable, match=r"await micro.config.load\(\)"):
        copy.get("anything")


async def test_reads_come_from_memory_with_no_rpc(platform: Platform, copy: ConfigCopy) -> None:
    await platform.writer.set("db", {"host": "h", "port": "5432"}, namespace="app")
    await platform.writer.set("db.password", "pw", secret=True, namespace="app")
    await copy.load()
    platform.calls.clear()
    for _ in range(1000):
        assert copy.get("db.port").int() == 5432
        assert copy.get("db.password").string() == SECRET_MASK
        assert copy.get("db.password", secret=True).string() == "pw"
        assert not copy.get("db.nothing").exists
    assert platform.calls == []
    db = copy.get("db")
    assert db.data == {"host": "h", "port": "5432", "password": SECRET_MASK}
    assert db.secrets == {"password"}
    assert copy.get("db", secret=True).data["password"] == "pw"


async def test_sees_a_set_made_elsewhere_without_restart(
    platform: Platform, copy: ConfigCopy
) -> None:
    await copy.load()
    assert not copy.get("feature.beta").exists
    async with copy.watch("feature") as changes:
        assert not (await asyncio.wait_for(changes.next(), 10)).exists
        await platform.writer.set("feature", {"beta": True}, namespace="app")
        seen = await next_matching(changes, lambda v: v.exists)
    assert seen.data == {"beta": True}
    assert copy.get("feature.beta").bool() is True
    await platform.writer.set("elsewhere", 1, namespace="other")
    assert not copy.get("elsewhere").exists


async def test_own_writes_are_read_at_once(copy: ConfigCopy) -> None:
    await copy.load()
    await copy.set("limits", {"rps": 10})
    assert copy.get("limits.rps").int() == 10
    await copy.set("limits", {"burst": 20})
    assert copy.get("limits").data == {"rps": 10, "burst": 20}
    await copy.set("token", "t0k", secret=True)
    assert copy.get("token").string() == SECRET_MASK
    assert copy.get("token", secret=True).string() == "t0k"
    await copy.delete("limits.rps")
    assert copy.get("limits").data == {"burst": 20}


async def test_what_a_caller_reads_is_its_own(platform: Platform, copy: ConfigCopy) -> None:
    await platform.writer.set("obj", {"list": [1], "inner": {"k": "v"}}, namespace="app")
    await copy.load()
    read = copy.get("obj").data
    read["list"].append(2)
    read["inner"]["k"] = "changed"
    assert copy.get("obj").data == {"list": [1], "inner": {"k": "v"}}


async def test_older_trees_never_replace_newer(platform: Platform, copy: ConfigCopy) -> None:
    await copy.load()
    await copy.set("n", 1)
    stale = micro.config.Value(path="", data={"n": 0}, revision=copy.revision - 1)
    copy._apply(stale, revealed=True, snapshot=False)
    assert copy.get("n").int() == 1


async def test_follows_again_after_the_server_restarts(
    platform: Platform, copy: ConfigCopy
) -> None:
    await platform.writer.set("v", 1, namespace="app")
    await copy.load()
    async with copy.watch("v") as changes:
        assert (await asyncio.wait_for(changes.next(), 10)).data == 1
        await platform.stop_serving()
        assert copy.get("v").int() == 1  # still answering from what it has
        await platform.serve()
        await platform.writer.set("v", 2, namespace="app")
        assert (await next_matching(changes, lambda v: v.data == 2, timeout=20)).data == 2
    assert copy.get("v").int() == 2


async def test_a_wrong_server_key_masks_secrets_but_keeps_the_rest(
    platform: Platform, copy: ConfigCopy
) -> None:
    await platform.writer.set("pw", "hunter2", secret=True, namespace="app")
    await platform.writer.set("plain", "ok", namespace="app")
    await platform.stop_serving()
    platform.backend = StoreConfig(platform.backend._store, secrets=SecretBox(os.urandom(32)))
    await platform.serve()
    await copy.load()
    assert copy.get("plain").string() == "ok"
    assert copy.get("plain", secret=True).string() == "ok"
    assert copy.get("pw").string() == SECRET_MASK
    with pytest.raises(SecretError, match="not the key it was encrypted with"):
        copy.get("pw", secret=True)
    with pytest.raises(SecretError):
        copy.get("", secret=True)
    async with copy.watch("plain") as changes:
        await asyncio.wait_for(changes.next(), 10)
        await platform.writer.set("plain", "still", namespace="app")
        assert (await next_matching(changes, lambda v: v.data == "still")).data == "still"


async def test_load_fails_clearly_when_there_is_no_config_service() -> None:
    client = Client(proxy=f"127.0.0.1:{free_port()}")
    local = ConfigCopy(RPCConfig(client), retry=0.05)
    try:
        with pytest.raises(errors.ServiceUnavailable):
            await local.load()
        with pytest.raises(errors.ServiceUnavailable, match="not loaded yet"):
            local.get("x")
    finally:
        await local.close()
        await client.close()


async def test_the_facade_serves_this_loops_copy(platform: Platform) -> None:
    micro.config.set_default(RPCConfig(platform.client()), namespace="svc")
    try:
        with pytest.raises(errors.ServiceUnavailable):
            micro.config.get("x")
        await micro.config.load()
        await micro.config.set("greeting", "hello")
        assert micro.config.get("greeting").string() == "hello"
        async with micro.config.watch("greeting") as changes:
            assert (await asyncio.wait_for(changes.next(), 10)).data == "hello"
            await platform.writer.set("greeting", "hi", namespace="svc")
            assert (await next_matching(changes, lambda v: v.data == "hi")).data == "hi"
        assert micro.config.get("greeting").string() == "hi"
        await micro.config.delete("greeting")
        assert not micro.config.get("greeting").exists
        assert not (await platform.writer.get("greeting", namespace="micro")).exists
    finally:
        await micro.config.detach()


async def test_attach_does_not_fail_when_config_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client(proxy=f"127.0.0.1:{free_port()}", timeout=1.0)
    try:
        copy = await micro.config.attach(client, namespace="svc", timeout=1.0)
        assert not copy.loaded
        assert "not loaded yet" in caplog.text
    finally:
        await micro.config.detach()
        await client.close()
