"""Events through a real micro server: services publish, consume in a group, replay; the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from pathlib import Path

import msgspec
import pytest
from tests._support import free_port, require_nats

import micro
import micro.events
from micro.events.client import RPCStream
from micro.events.nats import NatsStream
from micro.testing import MicroServerProcess, serving, start_server


class Order(msgspec.Struct):
    id: int
    item: str


class Shop:
    async def buy(self, order: Order) -> dict[str, int]:
        event = await micro.events.publish("orders", order)
        return {"sequence": event.sequence}


async def test_publish_consume_in_a_group_and_replay(micro_env: MicroServerProcess) -> None:
    shop = micro.Service("shop")
    shop.handle(Shop())
    billing = micro.Service("billing")
    seen: list[Order] = []
    three = asyncio.Event()

    @billing.consume("orders", group="billing", offset=0)
    async def bill(order: Order) -> None:
        seen.append(order)
        if len(seen) == 3:
            three.set()

    async with serving(shop), serving(billing):
        for i in range(3):
            rsp = await micro.client.call("shop", "Shop.Buy", {"id": i, "item": f"book {i}"})
            assert rsp == {"sequence": i + 1}
        async with asyncio.timeout(20):
            await three.wait()
        # A third party replays the topic from its beginning.
        replayed = await micro.events.read("orders", offset=0)
    assert [o.id for o in seen] == [0, 1, 2]
    assert [e.decode(Order) for e in replayed] == [Order(i, f"book {i}") for i in range(3)]


def test_events_cli(micro_server: MicroServerProcess) -> None:
    def ok(*args: str) -> str:
        out = micro_server.micro(*args)
        assert out.returncode == 0, out.stderr
        return out.stdout

    ok("events", "publish", "audit", '{"who": "ann"}')
    ok("events", "publish", "audit", '{"who": "bo"}')
    assert "audit" in ok("events", "topics").split()
    lines = [json.loads(line) for line in ok("events", "read", "audit").splitlines()]
    assert [line["sequence"] for line in lines] == [1, 2]
    consumed = ok("events", "consume", "audit", "--group", "cli", "--offset", "1").splitlines()
    assert len(consumed) == 2
    # The group's position is kept: consuming again finds nothing new.
    assert ok("events", "consume", "audit", "--group", "cli").strip() == ""
    header, row = ok("events", "groups", "audit").splitlines()
    assert (header.split(), row.split()) == (
        ["GROUP", "NEXT", "PENDING", "LAG"],
        ["cli", "3", "0", "0"],
    )
    # Back to the first event; to a time; to the end.
    moved = json.loads(ok("events", "reset", "audit", "cli", "--offset", "1"))
    assert moved == {"group": "cli", "next": 1, "pending": 0, "lag": 2}
    assert [g["lag"] for g in json.loads(ok("events", "groups", "audit", "--output", "json"))] == [
        2
    ]
    assert len(ok("events", "consume", "audit", "--group", "cli").splitlines()) == 2
    moved = json.loads(ok("events", "reset", "audit", "cli", "--time", "2000-01-01T00:00:00Z"))
    assert moved["next"] == 1
    assert json.loads(ok("events", "reset", "audit", "cli", "--end"))["next"] == 3
    for args in (("--offset", "x"), ("--time", "5"), ()):
        wrong = micro_server.micro("events", "reset", "audit", "cli", *args)
        assert wrong.returncode == 1, wrong.stderr
        assert "Traceback" not in wrong.stderr
    bad = micro_server.micro("events", "publish", "bad topic!", "{}")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr


async def test_the_server_on_nats_jetstream(tmp_path: Path) -> None:
    url = await require_nats()
    prefix = f"t{uuid.uuid4().hex[:12]}"
    server = start_server(
        tmp_path / "home",
        env={"MICRO_EVENTS": "nats", "MICRO_EVENTS_ADDRESS": url, "MICRO_PREFIX": prefix},
    )
    try:

        def ok(*args: str) -> str:
            out = server.micro(*args)
            assert out.returncode == 0, out.stderr
            return out.stdout

        for who in ("ann", "bo", "cy"):
            ok("events", "publish", "signups", json.dumps({"who": who}))
        consumed = ok("events", "consume", "signups", "--group", "mail", "--offset", "1")
        assert [json.loads(line)["sequence"] for line in consumed.splitlines()] == [1, 2, 3]
        replay = [json.loads(line) for line in ok("events", "read", "signups").splitlines()]
        assert [e["sequence"] for e in replay] == [1, 2, 3]
    finally:
        server.stop()
        stream = NatsStream(url, prefix=prefix)
        await stream.delete_all()
        await stream.close()


async def test_a_consumer_resumes_when_the_server_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="micro")
    home = tmp_path / "home"
    env = {"MICRO_PROXY_ADDRESS": f"127.0.0.1:{free_port()}"}
    first = start_server(home, env=env)
    for key, value in first.env().items():
        if key.startswith("MICRO_"):
            monkeypatch.setenv(key, value)
    worker = micro.Service("worker")
    got: list[int] = []
    arrived = asyncio.Event()

    # offset=0: the group reads from the topic's start (a new group without an offset starts
    # at the end when it first reads, which a publish right after start-up could beat).
    @worker.consume("jobs", group="workers", offset=0)
    async def work(job: dict[str, int]) -> None:
        got.append(job["n"])
        arrived.set()

    second: MicroServerProcess | None = None
    async with serving(worker):
        await micro.events.publish("jobs", {"n": 1})
        try:
            async with asyncio.timeout(20):
                await arrived.wait()
        except TimeoutError:
            raise AssertionError(f"the first event never arrived:\n{caplog.text}") from None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        arrived.clear()
        second = start_server(home, env=env)
        try:
            # The consumer reconnects by itself; what is published now reaches it.
            publisher = micro.client.new_client()
            stream = RPCStream(publisher)
            async with asyncio.timeout(30):
                while not arrived.is_set():
                    await stream.publish("jobs", b'{"n": 2}')
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(2):
                            await arrived.wait()
            await publisher.close()
        finally:
            second.stop()
    assert got[0] == 1
    assert 2 in got[1:]
