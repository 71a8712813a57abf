"""The ``config.Config`` service as other languages see it: JSON values as text, the
caller's namespace picking the tree, malformed values refused with a 400."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from micro import errors
from micro.config.client import RPCConfig
from micro.config.handler import Config as ConfigHandler
from micro.config.secrets import SecretBox
from micro.config.store import StoreConfig
from micro.rpc import Client, Server, endpoints_of
from micro.store.memory import MemoryStore

JSON = "application/json"


@pytest.fixture
async def served() -> AsyncIterator[str]:
    backend = StoreConfig(MemoryStore(), secrets=SecretBox(os.urandom(32)))
    server = Server()
    server.add("config", endpoints_of(ConfigHandler(backend)))
    address = await server.start("127.0.0.1:0")
    yield str(address)
    await server.stop(grace=1)
    await backend.close()


@pytest.fixture
async def client(served: str) -> AsyncIterator[Client]:
    client = Client(proxy=served)
    yield client
    await client.close()


async def test_endpoints_are_micros(client: Client) -> None:
    await client.call("config", "Config.Set", {"path": "a", "value": {"data": '{"b":1}'}})
    rsp = await client.call("config", "Config.Get", {"path": "a"}, content_type=JSON)
    assert rsp["value"]["data"] == '{"b":1}'
    assert rsp["value"]["format"] == "json"
    await client.call("config", "Config.Delete", {"path": "a.b"})
    rsp = await client.call("config", "Config.Get", {"path": "a.b"})
    assert rsp["value"]["data"] == "null"


async def test_secret_option_and_masking_on_the_wire(client: Client) -> None:
    secret = {"path": "pw", "value": {"data": '"x"'}, "options": {"secret": True}}
    await client.call("config", "Config.Set", secret)
    rsp = await client.call("config", "Config.Get", {"path": "pw"})
    assert rsp["value"]["data"] == '"[secret]"'
    assert rsp["value"]["secrets"] == [""]
    rsp = await client.call("config", "Config.Get", {"path": "pw", "options": {"secret": True}})
    assert rsp["value"]["data"] == '"x"'


async def test_the_callers_namespace_picks_the_tree(served: str) -> None:
    alice = Client(proxy=served, metadata={"micro-namespace": "alice"})
    bob = Client(proxy=served, metadata={"micro-namespace": "bob"})
    try:
        await alice.call("config", "Config.Set", {"path": "k", "value": {"data": '"a"'}})
        rsp = await bob.call("config", "Config.Get", {"path": "k"})
        assert rsp["value"]["data"] == "null"
        rsp = await alice.call("config", "Config.Get", {"path": "k"})
        assert rsp["value"]["data"] == '"a"'
        assert (await RPCConfig(bob).get("k", namespace="alice")).data == "a"
        assert not (await RPCConfig(bob).get("k", namespace="micro")).exists
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize("data", ["", "{not json", '{"a":', "nul"])
async def test_malformed_value_is_a_400_and_nothing_is_lost(client: Client, data: str) -> None:
    await client.call("config", "Config.Set", {"path": "keep", "value": {"data": "1"}})
    with pytest.raises(errors.BadRequest, match="invalid config value"):
        await client.call("config", "Config.Set", {"path": "keep", "value": {"data": data}})
    with pytest.raises(errors.BadRequest, match="invalid config value: missing"):
        await client.call("config", "Config.Set", {"path": "keep"})
    rsp = await client.call("config", "Config.Get", {"path": ""})
    assert rsp["value"]["data"] == '{"keep":1}'


async def test_bad_path_is_a_400(client: Client) -> None:
    with pytest.raises(errors.BadRequest, match="invalid path"):
        await client.call("config", "Config.Get", {"path": "a..b"})
    with pytest.raises(errors.BadRequest, match="invalid namespace"):
        await client.call("config", "Config.Get", {"path": "a", "namespace": "no way"})


async def test_watch_streams_json_values(client: Client) -> None:
    async with await client.stream(
        "config", "Config.Watch", {"path": "w"}, content_type=JSON
    ) as stream:
        first = await stream.recv()
        assert first["value"]["data"] == "null"
        await client.call("config", "Config.Set", {"path": "w", "value": {"data": "[1,2]"}})
        second = await stream.recv()
    assert second["value"]["data"] == "[1,2]"
    assert second["value"]["revision"] > first["value"].get("revision", 0)
