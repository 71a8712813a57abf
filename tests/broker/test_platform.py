"""The broker through a real micro server: @service.subscribe and micro.broker.publish."""

from __future__ import annotations

import asyncio

import msgspec

import micro
import micro.broker
from micro.testing import MicroServerProcess, serving


class Greeting(msgspec.Struct):
    text: str


async def test_subscribe_and_publish_through_the_server(micro_env: MicroServerProcess) -> None:
    listener = micro.Service("listener")
    got: list[str] = []
    queued: list[str] = []
    done = asyncio.Event()

    @listener.subscribe("greetings")
    async def hear(greeting: Greeting) -> None:
        got.append(greeting.text)
        if len(got) == 3 and len(queued) == 3:
            done.set()

    @listener.subscribe("greetings", queue="workers")
    async def work(greeting: Greeting) -> None:
        queued.append(greeting.text)
        if len(got) == 3 and len(queued) == 3:
            done.set()

    async with serving(listener):
        for text in ("a", "b", "c"):
            await micro.broker.publish("greetings", Greeting(text))
        async with asyncio.timeout(20):
            await done.wait()
    assert sorted(got) == ["a", "b", "c"]
    assert sorted(queued) == ["a", "b", "c"]
