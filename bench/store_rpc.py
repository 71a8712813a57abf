"""The store from a service through RPC, against our own RPC echo on the same server.

    .venv/bin/python bench/store_rpc.py [--runs 3] [--calls 20000]

Target (issue "Store"): read/write through RPC >= 0.6x our own RPC echo rate at the same
concurrency. Both go from a client (this process) to one real ``micro server`` (default
profile: SQLite, WAL, synchronous=FULL) over one connection: the echo is ``Debug.Health``
answered by the same server, so the ratio is the cost of the store's work alone.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import median_of, print_table, run_load, write_results
from micro.auth.client import RPCAuth
from micro.rpc import Client
from micro.store.base import Record
from micro.store.client import RPCStore

READY = "micro server ready: proxy "
VALUE = b"v" * 100


def start_server() -> tuple[subprocess.Popen[str], str]:
    """A real ``micro server`` in a fresh MICRO_HOME; returns it and its proxy address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(
        MICRO_HOME=tempfile.mkdtemp(prefix="micro-bench-"),
        MICRO_PROXY_ADDRESS="127.0.0.1:0",
        MICRO_LOG_LEVEL="warning",
        MICRO_ADMIN_PASSWORD="bench",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "micro", "server"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(READY):
            return proc, line[len(READY) :].strip()
    raise RuntimeError("micro server did not start")


async def rate(call: Callable[[], Awaitable[Any]], concurrency: int, calls: int) -> float:
    async def one() -> None:
        await call()

    result = await run_load(
        one, concurrency=concurrency, calls=calls, warmup=calls // 10, max_seconds=15
    )
    return result.calls_per_s


async def main(runs: int, calls: int) -> None:
    proc, proxy = start_server()
    rows = []
    try:
        anonymous = Client(proxy=proxy)
        token = await RPCAuth(anonymous).token(id="admin", secret="bench")
        await anonymous.close()
        # As a service does: its calls carry its account's token (the store wants an admin).
        client = Client(proxy=proxy, metadata={"authorization": f"Bearer {token.access_token}"})
        store = RPCStore(client)
        counter = itertools.count()

        async def write() -> None:
            key = f"k{next(counter) % 5000:05d}"
            await store.write(Record(key=key, value=VALUE), table="bench")

        async def read() -> None:
            await store.read(f"k{next(counter) % 5000:05d}", table="bench")

        async def echo() -> None:
            await client.call("store", "Debug.Health")

        for i in range(5000):
            await store.write(Record(key=f"k{i:05d}", value=VALUE), table="bench")
        for concurrency in (1, 64):
            for op, fn in (("write", write), ("read", read)):

                async def sample(
                    fn: Callable[[], Awaitable[None]] = fn, c: int = concurrency
                ) -> dict[str, float]:
                    echo_rate = await rate(echo, c, calls)
                    mine = await rate(fn, c, calls)
                    return {"store": mine, "echo": echo_rate, "ratio": mine / echo_rate}

                medians, _ = await median_of(runs, sample)
                rows.append(
                    {
                        "op": op,
                        "in flight": concurrency,
                        "store ops/s": medians["store"],
                        "echo calls/s": medians["echo"],
                        "ratio": medians["ratio"],
                        "target": 0.6,
                    }
                )
        await client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print_table(f"store through RPC vs RPC echo, same server (medians of {runs})", rows)
    write_results("store_rpc", {"rows": rows})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.calls))
