"""RPC benchmark driver: every target x every concurrency, medians of N runs.

For each (target, concurrency) the server is started in its own process;
the load runs in this process (or in the target's own client subprocess),
measuring calls/s, p50/p99 latency (µs) and the server's CPU µs per call
(plus the broker's, where there is one).  Results are printed as tables,
with throughput and CPU ratios against grpcio and the raw echo, and written
to ``bench/results/rpc.json``.

    .venv/bin/python bench/rpc/run.py                 # defaults: ~2 minutes
    .venv/bin/python bench/rpc/run.py --runs 1 --calls 5000 --targets raw-echo,grpcio

Prerequisite for the nameko rows: ``bash bench/rpc/nameko_echo/setup.sh`` and
RabbitMQ on 127.0.0.1:5672 (else the rows say "skipped: <reason>").
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``import bench`` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import uvloop

from bench._harness import (
    CpuMeter,
    Result,
    median_of,
    print_table,
    run_load,
    start_server,
    windows,
    write_results,
)
from bench.rpc.targets import BASELINES, TARGETS, Target

_tags = itertools.count(1)


def _tag() -> str:
    """Unique per server start: pid + counter (nameko names queues after it)."""
    return f"{os.getpid()}_{next(_tags)}"


async def measure(target: Target, concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    """One row: start the server, run ``args.runs`` measured phases, take medians."""
    row: dict[str, Any] = {"target": target.name, "concurrency": concurrency}
    reason = target.skip_reason()
    if reason:
        row["status"] = f"skipped: {reason}"
        return row
    tag = _tag()
    async with start_server(target.server_argv(tag)) as server:
        client = await target.connect(server.address) if target.connect else None
        try:

            async def once() -> dict[str, float]:
                srv = CpuMeter([server.pid])
                aux_pids = target.aux_pids()
                aux = CpuMeter(aux_pids)
                window = windows(srv, aux)
                result: Result
                if client is not None:
                    result = await run_load(
                        client.call,
                        concurrency=concurrency,
                        calls=args.calls,
                        warmup=args.warmup,
                        max_seconds=args.max_seconds,
                        window=window,
                    )
                else:
                    assert target.external is not None
                    result = await target.external(
                        tag=tag,
                        concurrency=concurrency,
                        calls=args.calls,
                        warmup=args.warmup,
                        max_seconds=args.max_seconds,
                        window=window,
                    )
                sample = result.as_dict()
                sample["server_cpu_us"] = srv.seconds / result.calls * 1e6
                if aux_pids:
                    sample["aux_cpu_us"] = aux.seconds / result.calls * 1e6
                return sample

            medians, samples = await median_of(args.runs, once)
        finally:
            if client is not None:
                await client.close()
    row.update(status="ok", **medians)
    row["runs"] = samples
    return row


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, float) and isinstance(b, float) and b else None


def report(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Print the main table and the ratio table; return the ratio rows."""
    print_table(
        'RPC echo {"name":"John"} -> {"msg":"Hello John"} (medians)',
        [
            {
                "target": r["target"],
                "in flight": r["concurrency"],
                "calls/s": r.get("calls_per_s"),
                "p50 µs": r.get("p50_us"),
                "p99 µs": r.get("p99_us"),
                "server CPU µs/call": r.get("server_cpu_us"),
                "broker CPU µs/call": r.get("aux_cpu_us"),
                "calls": r.get("calls"),
                "status": r["status"],
            }
            for r in rows
        ],
    )
    by_key = {(r["target"], r["concurrency"]): r for r in rows if r["status"] == "ok"}
    ratios: list[dict[str, Any]] = []
    for r in rows:
        if r["status"] != "ok":
            continue
        out: dict[str, Any] = {"target": r["target"], "in flight": r["concurrency"]}
        for base in BASELINES:
            b = by_key.get((base, r["concurrency"]), {})
            out[f"calls/s vs {base}"] = _ratio(r.get("calls_per_s"), b.get("calls_per_s"))
            out[f"CPU/call vs {base}"] = _ratio(r.get("server_cpu_us"), b.get("server_cpu_us"))
        ratios.append(out)
    if ratios:
        print_table("Ratios (same in-flight count; CPU = server process only)", ratios)
    tracing = tracing_cost(by_key)
    if tracing:
        print_table("Tracing on (sampled 100%) vs off, same run (goal: >= 0.8x calls/s)", tracing)
    return ratios


def tracing_cost(by_key: dict[tuple[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """micro-direct-traced against micro-direct at each in-flight count."""
    rows: list[dict[str, Any]] = []
    for (target, conc), traced in sorted(by_key.items()):
        plain = by_key.get(("micro-direct", conc))
        if target != "micro-direct-traced" or plain is None:
            continue
        rows.append(
            {
                "in flight": conc,
                "calls/s off": plain.get("calls_per_s"),
                "calls/s on": traced.get("calls_per_s"),
                "on/off": _ratio(traced.get("calls_per_s"), plain.get("calls_per_s")),
                "server CPU µs off": plain.get("server_cpu_us"),
                "server CPU µs on": traced.get("server_cpu_us"),
            }
        )
    return rows


async def amain(args: argparse.Namespace) -> int:
    names = args.targets.split(",") if args.targets else list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        print(f"unknown targets {unknown}; known: {list(TARGETS)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for name in names:
        for conc in args.concurrency:
            print(f"… {name} @ {conc} in flight", file=sys.stderr, flush=True)
            try:
                rows.append(await measure(TARGETS[name], conc, args))
            except Exception as exc:  # one broken target must not lose the others
                print(f"{name} @ {conc} failed: {exc}", file=sys.stderr)
                rows.append(
                    {"target": name, "concurrency": conc, "status": f"failed: {exc!r}"[:200]}
                )
    ratios = report(rows)
    path = write_results(
        args.out,
        {
            "settings": {
                "runs": args.runs,
                "calls": args.calls,
                "warmup": args.warmup,
                "max_seconds": args.max_seconds,
                "concurrency": args.concurrency,
            },
            "targets": {n: TARGETS[n].note for n in names},
            "rows": rows,
            "ratios": ratios,
            "tracing": tracing_cost(
                {(r["target"], r["concurrency"]): r for r in rows if r["status"] == "ok"}
            ),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
    )
    print(f"\nwrote {path} in {time.monotonic() - started:.0f}s")
    return 1 if any(r["status"].startswith("failed") for r in rows) else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="RPC benchmark: targets x concurrency, medians")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per row (median)")
    ap.add_argument("--calls", type=int, default=50_000, help="max calls per measured run")
    ap.add_argument("--warmup", type=int, default=2_000, help="unrecorded calls before each run")
    ap.add_argument(
        "--max-seconds", type=float, default=4.0, help="time cap per warmup and per measured run"
    )
    ap.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 64],
        help="comma list of in-flight counts",
    )
    ap.add_argument("--targets", default="", help=f"comma list, default all: {','.join(TARGETS)}")
    ap.add_argument("--out", default="rpc", help="results name: bench/results/<out>.json")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return uvloop.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
