"""The cost of tracing per direct RPC call, counted rather than timed.

Client and server in one process over loopback TCP, ``--calls`` calls at ``--concurrency``
in flight, with tracing off or on (sampled 100%: the client's middleware and the server's
observer, the recorder flushing batches encoded as ``Trace.Record`` sends them). Under
``valgrind --tool=callgrind`` the instruction counts of the two modes compare the CPU
work of a call with and without tracing whatever else the machine is doing (a busy
machine makes the timed benchmark's ratios noisy)::

    .venv/bin/python bench/rpc/tracing_cost.py count     # ~5 minutes under valgrind

runs each mode twice (2,000 and 12,000 calls), so that the process's start-up cancels out
of the instructions per call, and writes ``bench/results/rpc-tracing-instructions.json``.
``off``/``on`` run one mode and print the process's CPU µs per call (noisy when shared).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "helloworld"))


async def run(traced: bool, calls: int, concurrency: int) -> float:
    """CPU µs per call of ``calls`` calls."""
    from main import Helloworld  # examples/helloworld/main.py

    from bench.rpc.micro_hello import start_tracing
    from micro.rpc import Client, Server, endpoints_of
    from micro.trace import ClientTracing, ServerTracing, recorder

    if traced:
        start_tracing("helloworld")
    server = Server(observers=[ServerTracing("helloworld")] if traced else [])
    server.add("helloworld", endpoints_of(Helloworld()))
    address = await server.start("127.0.0.1:0")
    client = Client(proxy=str(address), middleware=[ClientTracing("bench")] if traced else [])
    request: Any = {"name": "John"}
    await client.call("helloworld", "Helloworld.Call", request)
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await client.call("helloworld", "Helloworld.Call", request)

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    spent = time.process_time() - started
    await client.close()
    await server.stop(0.1)
    await recorder.stop()
    return spent / calls * 1e6


def _instructions(mode: str, calls: int, folder: Path) -> int:
    """Instructions callgrind counted for one run of ``mode``."""
    out = folder / f"{mode}-{calls}.cg"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, __file__, mode, "--calls", str(calls)],
        capture_output=True, text=True, timeout=1800, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found is not None, done.stderr[-2000:]
    return int(found[1])


def count() -> None:
    """Instructions per call, tracing off and on, the four runs in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from bench._harness import print_table, write_results

    small, large = 2_000, 12_000
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(4) as pool:
        runs = {
            (mode, calls): pool.submit(_instructions, mode, calls, Path(tmp))
            for mode in ("off", "on")
            for calls in (small, large)
        }
        counted = {key: future.result() for key, future in runs.items()}
    per_call = {
        mode: (counted[(mode, large)] - counted[(mode, small)]) / (large - small)
        for mode in ("off", "on")
    }
    ratio = per_call["on"] / per_call["off"]
    rows = [
        {"tracing": mode, "instructions per call": round(per_call[mode])} for mode in ("off", "on")
    ]
    print_table("Direct RPC, client and server in one process (callgrind)", rows)
    print(f"on/off work per call {ratio:.3f}; throughput on/off {1 / ratio:.3f} (goal >= 0.8)")
    write_results(
        "rpc-tracing-instructions",
        {
            "runs": {f"{mode}-{calls}": n for (mode, calls), n in counted.items()},
            "instructions_per_call": per_call,
            "work_on_to_off": ratio,
            "throughput_on_to_off": 1 / ratio,
        },
    )


def main() -> None:
    if __package__ in (None, ""):
        sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["off", "on", "count"])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if args.mode == "count":
        count()
        return
    import uvloop

    cpu = uvloop.run(run(args.mode == "on", args.calls, args.concurrency))
    print(f"tracing {args.mode}: {cpu:.1f} CPU µs per call ({args.calls} calls)")


if __name__ == "__main__":
    main()
