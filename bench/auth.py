"""What authentication costs a call: the same helloworld ``Call`` with no door, through a
door as an anonymous caller, and through a door with a verified token.

    .venv/bin/python bench/auth.py [--runs 3] [--calls 30000]

Target (issue "Auth"): an authenticated call costs <= 1.15x an unauthenticated one at 64 in
flight. The token is verified once and cached, the rules are cached per namespace, and the
decision per (token, namespace, endpoint) is cached on top, so after the first call a
door is a dictionary lookup. Client and server are separate processes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization

from bench._harness import print_table, run_load, start_server, write_results
from micro.auth.base import Account, audience
from micro.auth.keys import KeyPair
from micro.rpc import Client

SCRIPT = str(Path(__file__).resolve().parent / "rpc" / "micro_hello.py")


async def measure(
    address: str, token: str | None, concurrency: int, calls: int
) -> dict[str, float]:
    metadata = {"authorization": f"Bearer {token}"} if token else None
    client = Client(proxy=address, metadata=metadata)

    async def one() -> None:
        rsp = await client.call("helloworld", "Helloworld.Call", {"name": "John"})
        assert rsp["msg"] == "Hello John"

    result = await run_load(one, concurrency=concurrency, calls=calls, warmup=calls // 10)
    await client.close()
    return {"calls_s": result.calls_per_s, "p50": result.p50_us, "p99": result.p99_us}


def _medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


async def main(runs: int, calls: int) -> None:
    keys = KeyPair.generate()
    private = keys._private  # the bench owns this throwaway pair
    assert private is not None
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    env = dict(os.environ, MICRO_AUTH_PRIVATE_KEY=base64.b64encode(pem).decode())
    # What a caller of a service holds: a token bound to that service.
    token = keys.sign(
        Account(id="bench", issuer="micro", scopes=["admin"]),
        expiry=3600,
        epoch="e",
        audience=audience("micro", "helloworld"),
    )
    cases = (
        ("no door", "serve", None),
        ("door, anonymous", "serve-auth", None),
        ("door, token", "serve-auth", token),
    )
    rows = []
    for concurrency in (1, 64):
        samples: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in cases}
        for _ in range(runs):
            # The three cases take turns within each run, so drift of a busy machine
            # falls on all of them alike.
            for label, mode, tok in cases:
                async with start_server([sys.executable, SCRIPT, mode], env=env) as server:
                    samples[label].append(await measure(server.address, tok, concurrency, calls))
        cells = {label: _medians(found) for label, found in samples.items()}
        base = cells["no door"]["calls_s"]
        for label, cell in cells.items():
            rows.append(
                {
                    "case": label,
                    "in flight": concurrency,
                    "calls/s": cell["calls_s"],
                    "p50 µs": cell["p50"],
                    "p99 µs": cell["p99"],
                    "cost vs no door": base / cell["calls_s"],
                }
            )
    print_table(f"authenticated calls (medians of {runs}); target: token <= 1.15x at 64", rows)
    write_results("auth", {"rows": rows})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=30000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.calls))
