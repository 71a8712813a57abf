"""A running service reads config from its local copy and sees ``micro config set`` made
from the CLI without a restart: a real ``micro server``, the real ``micro`` command."""

from __future__ import annotations

import asyncio

import msgspec

import micro
from micro.config.testing import next_matching
from micro.testing import MicroServerProcess, serving


class ReadRequest(msgspec.Struct):
    path: str


class ReadResponse(msgspec.Struct):
    value: str


class Reader:
    """Answers with what ``micro.config.get`` says: the handler code a user writes."""

    async def read(self, req: ReadRequest) -> ReadResponse:
        return ReadResponse(micro.config.get(req.path).string("unset"))


async def _read(path: str) -> str:
    rsp = await micro.client.call("reader", "Reader.Read", {"path": path})
    value: str = rsp["value"]
    return value


async def test_service_sees_a_cli_set_without_restart(micro_env: MicroServerProcess) -> None:
    service = micro.Service("reader")
    service.handle(Reader())
    async with serving(service):
        await micro.config.load()  # a no-op once the service loaded it on start
        assert await _read("greeting") == "unset"
        async with micro.config.watch("greeting") as changes:
            assert not (await asyncio.wait_for(changes.next(), 10)).exists
            done = await asyncio.to_thread(micro_env.micro, "config", "set", "greeting", "hi")
            assert done.returncode == 0, done.stderr
            await next_matching(changes, lambda v: v.data == "hi")
        assert await _read("greeting") == "hi"
        done = await asyncio.to_thread(micro_env.micro, "config", "del", "greeting")
        assert done.returncode == 0, done.stderr
        async with micro.config.watch("greeting") as changes:
            await next_matching(changes, lambda v: not v.exists)
        assert await _read("greeting") == "unset"


async def test_service_loads_its_config_on_start(micro_env: MicroServerProcess) -> None:
    done = await asyncio.to_thread(micro_env.micro, "config", "set", "mode", "fast")
    assert done.returncode == 0, done.stderr
    service = micro.Service("reader")
    service.handle(Reader())
    async with serving(service):
        assert micro.config.get("mode").string() == "fast"
        assert await _read("mode") == "fast"
