"""SIGKILL of micro server during a stream of acknowledged writes loses none of them."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from micro.rpc import Client
from micro.store.base import Record
from micro.store.client import RPCStore
from micro.testing import start_server


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    client = Client(proxy=server.proxy)
    store = RPCStore(client)
    acknowledged: list[str] = []
    enough = asyncio.Event()

    async def writer(worker: int) -> None:
        for i in range(10_000):  # bounded; the kill comes long before the end
            key = f"w{worker}-{i:05d}"
            await store.write(Record(key=key, value=key.encode()), table="durable")
            acknowledged.append(key)
            if len(acknowledged) >= 300:
                enough.set()

    writers = [asyncio.ensure_future(writer(w)) for w in range(8)]
    await enough.wait()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    results = await asyncio.gather(*writers, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)  # the writes in flight failed
    await client.close()

    restarted = start_server(home)
    try:
        client = Client(proxy=restarted.proxy)
        stored = set(await RPCStore(client).list(table="durable"))
        missing = [key for key in acknowledged if key not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        await client.close()
    finally:
        restarted.stop()
