"""Faults against a real ``micro server`` (skipped until the server hosts ``events``):
SIGKILL of a consumer before it acks, and of the server during acknowledged publishes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from micro import errors
from micro.events.client import RPCStream
from micro.events.testing import next_delivery, unique
from micro.rpc import Client
from micro.testing import MicroServerProcess, start_server


def _admin_client(server: MicroServerProcess) -> Client:
    token = server.micro("user", "token").stdout.strip()
    assert token, "not logged in"
    return Client(proxy=server.proxy, metadata={"authorization": f"Bearer {token}"})


async def _require_events(stream: RPCStream) -> None:
    try:
        await stream.topics()
    except errors.MicroError as exc:
        if exc.code in (404, 500, 502, 503):
            pytest.skip(f"the server does not host events yet: {exc}")
        raise


_CONSUMER = textwrap.dedent(
    """
    import asyncio, os, sys
    from micro.events.client import RPCStream
    from micro.rpc import Client

    async def main() -> None:
        client = Client(proxy=os.environ["MICRO_PROXY"],
                        metadata={"authorization": "Bearer " + os.environ["TOKEN"]})
        stream = RPCStream(client)
        consumer = stream.consume(sys.argv[1], group=sys.argv[2], offset=1,
                                  auto_ack=False, ack_wait=1.0)
        delivery = await consumer.next()
        print("GOT", delivery.event.sequence, flush=True)
        await asyncio.Event().wait()  # never acks

    asyncio.run(main())
    """
)


async def test_sigkilled_consumer_event_is_delivered_again(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    client = _admin_client(micro_server)
    stream = RPCStream(client)
    try:
        await _require_events(stream)
        topic, group = unique(), unique("g")
        await stream.publish(topic, b"work")
        script = tmp_path / "consumer.py"
        script.write_text(_CONSUMER)
        token = micro_server.micro("user", "token").stdout.strip()
        proc = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, str(script), topic, group],
            env=micro_server.env(TOKEN=token),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
            assert line.strip() == "GOT 1"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        async with stream.consume(topic, group=group, auto_ack=False, ack_wait=1.0) as consumer:
            delivery = await next_delivery(consumer, timeout=15)
            assert (delivery.event.sequence, delivery.event.payload) == (1, b"work")
            assert delivery.attempt >= 2
            await delivery.ack()
    finally:
        await client.close()


async def test_acknowledged_publishes_survive_server_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    client = _admin_client(server)
    stream = RPCStream(client)
    topic = unique()
    acknowledged: list[tuple[int, bytes]] = []
    enough = asyncio.Event()
    try:
        await _require_events(stream)

        async def publisher(worker: int) -> None:
            try:
                for i in range(10_000):  # bounded; the kill comes long before the end
                    payload = f"w{worker}-{i:05d}".encode()
                    event = await stream.publish(topic, payload)
                    acknowledged.append((event.sequence, payload))
                    if len(acknowledged) >= 300:
                        enough.set()
            finally:
                enough.set()

        publishers = [asyncio.ensure_future(publisher(w)) for w in range(8)]
        await enough.wait()
        assert len(acknowledged) >= 300, "the publishes failed before the kill"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        results = await asyncio.gather(*publishers, return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)
    finally:
        await client.close()
        server.stop()

    restarted = start_server(home)
    try:
        client = _admin_client(restarted)
        stored = await RPCStream(client).read(topic, limit=0)
        sequences = [e.sequence for e in stored]
        assert sequences == sorted(sequences)
        assert sequences == list(range(1, len(sequences) + 1))
        by_seq = {e.sequence: e.payload for e in stored}
        missing = [(s, p) for s, p in acknowledged if by_seq.get(s) != p]
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
        for worker in range(8):  # each publisher's events in its order
            mine = [e.payload for e in stored if e.payload.startswith(f"w{worker}-".encode())]
            assert mine == sorted(mine)
        await client.close()
    finally:
        restarted.stop()
