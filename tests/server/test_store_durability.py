"""SIGKILL of micro server during a stream of acknowledged writes loses none of them."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from micro.rpc import Client
from micro.store.base import Record
from micro.store.client import RPCStore
from micro.testing import MicroServerProcess, start_server


def _admin_client(server: MicroServerProcess) -> Client:
    """A client acting as the server's logged-in admin (the store wants an account)."""
    token = server.micro("user", "token").stdout.strip()
    assert token, "not logged in"
    return Client(proxy=server.proxy, metadata={"authorization": f"Bearer {token}"})


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    client = _admin_client(server)
    store = RPCStore(client)
    acknowledged: list[str] = []
    enough = asyncio.Event()

    async def writer(worker: int) -> None:
        try:
            for i in range(10_000):  # bounded; the kill comes long before the end
                key = f"w{worker}-{i:05d}"
                await store.write(Record(key=key, value=key.encode()), table="durable")
                acknowledged.append(key)
                if len(acknowledged) >= 300:
                    enough.set()
        finally:
            enough.set()  # a writer that fails must not leave the test waiting

    writers = [asyncio.ensure_future(writer(w)) for w in range(8)]
    await enough.wait()
    assert len(acknowledged) >= 300, "the writes failed before the kill"
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    results = await asyncio.gather(*writers, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)  # the writes in flight failed
    await client.close()

    restarted = start_server(home)
    try:
        client = _admin_client(restarted)
        stored = set(await RPCStore(client).list(table="durable"))
        missing = [key for key in acknowledged if key not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        await client.close()
    finally:
        restarted.stop()
