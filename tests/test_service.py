"""micro.Service against a real micro server: registration, schemas, drain, recovery."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from tests._support import HELLOWORLD, free_port

import micro
from micro import errors
from micro.registry.client import RPCRegistry
from micro.testing import MicroServerProcess, serving, start_server, wait_for_service


class Req(msgspec.Struct):
    name: str
    times: int = 1


class Rsp(msgspec.Struct):
    msg: str


class Greeter:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def hello(self, req: Req) -> Rsp:
        return Rsp(msg=" ".join([f"Hello {req.name}"] * req.times))

    async def slow(self, req: Req) -> Rsp:
        self.started.set()
        await self.release.wait()
        return Rsp(msg=f"done {req.name}")

    async def count(self, req: Req) -> AsyncIterator[Rsp]:
        for i in range(req.times):
            yield Rsp(msg=str(i))


async def test_service_registers_with_endpoint_schemas(micro_env: MicroServerProcess) -> None:
    service = micro.Service("greeter", version="1.2")
    service.handle(Greeter())
    async with serving(service):
        [record] = await RPCRegistry(micro.client.default()).get_service("greeter")
    assert record.version == "1.2"
    endpoints = {e.name: e for e in record.endpoints}
    assert set(endpoints) == {"Greeter.Hello", "Greeter.Slow", "Greeter.Count"}
    hello = endpoints["Greeter.Hello"]
    assert hello.request["properties"]["name"] == {"type": "string"}
    assert hello.request["required"] == ["name"]
    assert hello.response["properties"]["msg"] == {"type": "string"}
    assert endpoints["Greeter.Count"].metadata["stream"] == "true"
    assert "Debug.Health" not in endpoints


async def test_call_by_name_direct_and_stream(micro_env: MicroServerProcess) -> None:
    service = micro.Service("greeter")
    service.handle(Greeter())
    async with serving(service):
        rsp = await micro.client.call("greeter", "Greeter.Hello", {"name": "Ann", "times": 2})
        assert rsp == {"msg": "Hello Ann Hello Ann"}
        typed = await micro.client.call(
            "greeter", "Greeter.Hello", Req(name="Bo"), response_type=Rsp
        )
        assert typed == Rsp(msg="Hello Bo")
        async with await micro.client.stream(
            "greeter", "Greeter.Count", {"name": "", "times": 3}
        ) as st:
            assert [m["msg"] async for m in st] == ["0", "1", "2"]
        health = await micro.client.call("greeter", "Debug.Health")
        assert health == {"status": "ok"}


async def test_wrong_field_type_is_a_400_naming_the_field(micro_env: MicroServerProcess) -> None:
    service = micro.Service("greeter")
    service.handle(Greeter())
    async with serving(service):
        with pytest.raises(errors.BadRequest) as info:
            await micro.client.call("greeter", "Greeter.Hello", {"name": 42})
    assert "name" in info.value.detail


async def test_unknown_service_is_not_found(micro_env: MicroServerProcess) -> None:
    with pytest.raises(errors.NotFound):
        await micro.client.call("nobody-here", "Nobody.Call", {})


async def test_stop_drains_in_flight_calls_and_deregisters(micro_env: MicroServerProcess) -> None:
    greeter = Greeter()
    service = micro.Service("greeter")
    service.handle(greeter)
    await service.start()
    caller = micro.client.new_client()
    pending = asyncio.ensure_future(caller.call("greeter", "Greeter.Slow", {"name": "x"}))
    await greeter.started.wait()
    stopping = asyncio.ensure_future(service.stop(grace=10))
    await asyncio.sleep(0)  # let stop() begin: deregister, refuse new calls
    greeter.release.set()
    assert await pending == {"msg": "done x"}
    await stopping
    with pytest.raises(errors.NotFound):
        await RPCRegistry(caller).get_service("greeter")
    await caller.close()


def _start_hello(server: MicroServerProcess) -> subprocess.Popen[str]:
    return server.start_service(HELLOWORLD, name="helloworld")


async def _node_requests(address: str) -> int:
    stats = await micro.client.call("helloworld", "Debug.Stats", address=address)
    return int(stats["requests"])


async def test_two_instances_share_calls(micro_env: MicroServerProcess) -> None:
    _start_hello(micro_env)
    _start_hello(micro_env)
    await wait_for_service("helloworld", nodes=2)
    via_proxy = micro.client.new_client(via_proxy=True)
    for _ in range(20):
        rsp = await via_proxy.call("helloworld", "Helloworld.Call", {"name": "John"})
        assert rsp == {"msg": "Hello John"}
    [record] = await RPCRegistry(via_proxy).get_service("helloworld")
    counts = [await _node_requests(node.address) for node in record.nodes]
    assert len(counts) == 2
    assert all(c >= 5 for c in counts), counts
    await via_proxy.close()


async def test_kill_9_one_instance_calls_keep_succeeding(micro_env: MicroServerProcess) -> None:
    victim = _start_hello(micro_env)
    _start_hello(micro_env)
    await wait_for_service("helloworld", nodes=2)
    registry = RPCRegistry(micro.client.default())
    async with registry.watch(service="helloworld") as watcher:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        via_proxy = micro.client.new_client(via_proxy=True)
        direct = micro.client.new_client()
        for _ in range(10):
            assert (await via_proxy.call("helloworld", "Helloworld.Call", {"name": "A"}))["msg"]
            assert (await direct.call("helloworld", "Helloworld.Call", {"name": "B"}))["msg"]
        # The dead node leaves the registry when its TTL (3 s in the fixture) lapses.
        async with asyncio.timeout(15):
            while True:
                result = await watcher.next()
                if result.action == "update" and len(result.service.nodes) == 1:
                    break
    [record] = await registry.get_service("helloworld")
    assert len(record.nodes) == 1
    await via_proxy.close()
    await direct.close()


async def test_service_recovers_when_the_server_restarts(tmp_path: Path) -> None:
    port = free_port()
    env = {"MICRO_PROXY_ADDRESS": f"127.0.0.1:{port}"}
    first = start_server(tmp_path / "home", env=env)
    try:
        first.start_service(HELLOWORLD, name="helloworld")
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    second = start_server(tmp_path / "home", env=env)
    second.services = first.services
    try:
        result = second.micro("call", "helloworld", "Helloworld.Call", '{"name":"again"}')
        deadline = asyncio.get_running_loop().time() + 10
        while result.returncode != 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)  # the service re-registers on its 0.5 s timer
            result = second.micro("call", "helloworld", "Helloworld.Call", '{"name":"again"}')
        assert result.returncode == 0, result.stderr
        assert "Hello again" in result.stdout
    finally:
        second.stop()


def test_service_without_a_name_fails_clearly(tmp_path: Path) -> None:
    script = tmp_path / "main.py"
    script.write_text("import micro\nmicro.Service().run()\n")
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={"MICRO_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert out.returncode != 0
    assert "a service needs a name" in out.stderr
