"""Config reads: ``micro.config.get`` from the service's local copy vs a ``Config.Get`` RPC
per read, side by side (issue "Store and Config": no network round trip per read).

    .venv/bin/python bench/config.py [--runs 3] [--reads 200000] [--calls 5000]

The config service runs in its own process (``bench/config.py serve``: the ``config.Config``
handler over the tree on a memory store, as ``micro server`` hosts it); this process is
the service. Rows:

``local copy``      ``micro.config.get("db.port").int()``: sync, from memory, the copy kept
                    fresh by a watch (server CPU during the window shows it costs nothing)
``in-process tree`` ``StoreConfig.get`` in this process (no network, but one record decode
                    per read): what a local copy saves beyond the round trip
``rpc Config.Get``  one RPC per read, closed loop at 1 and 50 calls in flight

Medians of ``--runs``; results in ``bench/results/config.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``import bench`` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import CpuMeter, median_of, print_table, run_load, start_server, write_results
from bench._serve import announce_ready, check_loopback, start_watchdog

TREE: dict[str, Any] = {
    "db": {"host": "10.0.0.1", "port": 5432, "pool": {"min": 2, "max": 20}},
    "features": {f"flag{i}": i % 2 == 0 for i in range(40)},
    "limits": {"rps": 100, "burst": 200, "timeout": "1m30s"},
}
PATH = "db.port"
SCRIPT = Path(__file__).resolve()


def _backend() -> Any:
    import os

    from micro.config.secrets import SecretBox
    from micro.config.store import StoreConfig
    from micro.store.memory import MemoryStore

    return StoreConfig(MemoryStore(), secrets=SecretBox(os.urandom(32)))


async def _serve(host: str) -> None:
    from micro.config.handler import Config
    from micro.rpc import Server, endpoints_of

    backend = _backend()
    server = Server()
    server.add("config", endpoints_of(Config(backend)))
    bound = await server.start(f"{host}:0")
    announce_ready(bound.host, bound.port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await backend.close()
    await server.stop(grace=1)


def _local_reads(n: int) -> float:
    """Seconds for ``n`` reads through the facade (the copy is this loop's default)."""
    import micro.config

    get = micro.config.get
    t0 = time.perf_counter_ns()
    for _ in range(n):
        get(PATH).int()
    return (time.perf_counter_ns() - t0) / 1e9


async def _measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    import micro.config
    from micro.config.client import RPCConfig
    from micro.rpc import Client

    rows: dict[str, dict[str, float]] = {}
    async with start_server([sys.executable, str(SCRIPT), "serve"]) as server:
        client = Client(proxy=server.address)
        rpc = RPCConfig(client)
        await rpc.set("", TREE)
        await rpc.set("db.password", "hunter2", secret=True)
        copy = micro.config.set_default(rpc, namespace="micro")
        await copy.load()
        assert micro.config.get(PATH).int() == 5432
        meter = CpuMeter([server.pid])

        def local() -> dict[str, float]:
            _local_reads(args.reads // 10)  # warm up
            meter.start()
            seconds = _local_reads(args.reads)
            meter.stop()
            return {
                "reads_per_s": args.reads / seconds,
                "us_per_read": seconds / args.reads * 1e6,
                "server_cpu_us_per_read": meter.seconds / args.reads * 1e6,
            }

        rows["local copy: micro.config.get"], _ = await median_of(args.runs, local)

        tree = _backend()
        await tree.set("", TREE)

        async def in_process() -> dict[str, float]:
            n = args.calls * 4
            t0 = time.perf_counter_ns()
            for _ in range(n):
                (await tree.get(PATH)).int()
            seconds = (time.perf_counter_ns() - t0) / 1e9
            return {"reads_per_s": n / seconds, "us_per_read": seconds / n * 1e6}

        rows["in-process tree: StoreConfig.get"], _ = await median_of(args.runs, in_process)

        async def one_rpc() -> None:
            (await rpc.get(PATH)).int()

        for concurrency in (1, 50):

            async def remote(concurrency: int = concurrency) -> dict[str, float]:
                result = await run_load(
                    one_rpc,
                    concurrency=concurrency,
                    calls=args.calls,
                    warmup=min(1000, args.calls // 5),
                    window=meter,
                )
                return {
                    "reads_per_s": result.calls_per_s,
                    "us_per_read": result.seconds / result.calls * 1e6,
                    "p50_us": result.p50_us,
                    "p99_us": result.p99_us,
                    "server_cpu_us_per_read": meter.seconds / result.calls * 1e6,
                }

            name = f"rpc Config.Get per read (c={concurrency})"
            rows[name], _ = await median_of(args.runs, remote)
        await micro.config.detach()
        await client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args()
    check_loopback(args.host)
    from micro.wire.transport import run

    if args.mode == "serve":
        start_watchdog()
        run(_serve(args.host))
        return
    rows = run(_measure(args))
    rpc_rate = rows["rpc Config.Get per read (c=50)"]["reads_per_s"]
    table = [
        {
            "target": name,
            **row,
            "x_rpc_c50": row["reads_per_s"] / rpc_rate,
        }
        for name, row in rows.items()
    ]
    print_table(f"config reads: medians of {args.runs} runs", table)
    path = write_results(
        "config",
        {"runs": args.runs, "reads": args.reads, "calls": args.calls, "path": PATH, "rows": table},
    )
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
