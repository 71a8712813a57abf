"""The HTTP gateway against a bare ASGI JSON echo on the same uvicorn set-up, with wrk.

    .venv/bin/python bench/gateway/run.py [--runs 3] [--seconds 10] [--connections 64]

Targets (issue "API gateway, gRPC edge, dynamic CLI commands and the network"):

* ``POST /helloworld/call`` through the gateway to the helloworld service: >= 0.5x the
  requests/s of the bare echo (``bench/gateway/asgi_echo.py``: the same answer computed
  in the ASGI app itself), p50/p99 at 64 connections. Runs are interleaved.
* throughput with 1 and with 1,000 registered services within 10% of each other (the
  route cache makes the registry's size irrelevant to a request).
* tracing (issue 16): the same request on a second platform with tracing off
  (``MICRO_TRACE_SAMPLE=0``, passed to its helloworld too) against the first one's default
  (every trace recorded: the gateway's, the proxy's and helloworld's spans, kept by the
  server): on >= 0.85x off. The two are measured alternately in the same run.

wrk (Debian's ``wrk``) is the load generator; it is installed with apt-get when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._harness import print_table, write_results
from bench._platform import micro, register_many, start_platform

ROOT = Path(__file__).resolve().parents[2]
LUA = 'wrk.method = "POST"\nwrk.body = \'{"name":"John"}\'\nwrk.headers["Content-Type"] = "application/json"\n'


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def wrk(url: str, seconds: int, connections: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            ensure_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {p: _ms(re.search(rf"\s{p}%\s+([\d.]+\w+)", out)[1]) for p in ("50", "99")}  # type: ignore[index]
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"],
            "non_2xx": float(errors[1]) if errors else 0.0}  # fmt: skip


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def start_echo() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "gateway" / "asgi_echo.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY "), line
    return proc, line.split()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--services", type=int, default=1000)
    args = parser.parse_args()
    ensure_wrk()
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(LUA)
    echo, echo_addr = start_echo()
    # The services registered to load the route cache count against the namespace's quota.
    quota = {"MICRO_REGISTRY_MAX_SERVICES": str(args.services + 100)}
    server, env, edges = start_platform(
        tempfile.mkdtemp(prefix="micro-bench-gateway-"), extra_env=quota
    )
    micro(env, "run", str(ROOT / "examples" / "helloworld"))
    api = edges["api"]
    untraced, untraced_env, untraced_edges = start_platform(
        tempfile.mkdtemp(prefix="micro-bench-gateway-off-"),
        extra_env={**quota, "MICRO_TRACE_SAMPLE": "0"},
    )
    micro(untraced_env, "run", str(ROOT / "examples" / "helloworld"))
    off_api = untraced_edges["api"]
    echo_runs: list[dict[str, float]] = []
    ours_runs: list[dict[str, float]] = []
    off_runs: list[dict[str, float]] = []
    many_runs: list[dict[str, float]] = []
    try:
        for url in (
            f"http://{echo_addr}/",
            f"http://{api}/helloworld/call",
            f"http://{off_api}/helloworld/call",
        ):
            wrk(url, 2, args.connections, script)  # warm up
        for _ in range(args.runs):
            echo_runs.append(wrk(f"http://{echo_addr}/", args.seconds, args.connections, script))
            ours_runs.append(
                wrk(f"http://{api}/helloworld/call", args.seconds, args.connections, script)
            )
            off_runs.append(
                wrk(f"http://{off_api}/helloworld/call", args.seconds, args.connections, script)
            )
        untraced.terminate()
        untraced.wait(timeout=60)
        asyncio.run(register_many(env, args.services))
        for _ in range(args.runs):
            many_runs.append(
                wrk(f"http://{api}/helloworld/call", args.seconds, args.connections, script)
            )
    finally:
        for proc in (echo, server, untraced):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    echo_rps, ours_rps, many_rps, off_rps = (
        med(echo_runs, "rps"),
        med(ours_runs, "rps"),
        med(many_runs, "rps"),
        med(off_runs, "rps"),
    )
    rows = [
        {"target": "bare ASGI echo", "rps": round(echo_rps), "p50_ms": med(echo_runs, "p50_ms"),
         "p99_ms": med(echo_runs, "p99_ms")},
        {"target": "gateway -> helloworld", "rps": round(ours_rps), "p50_ms": med(ours_runs, "p50_ms"),
         "p99_ms": med(ours_runs, "p99_ms"), "ratio": round(ours_rps / echo_rps, 2), "goal": ">= 0.5"},
        {"target": f"same, {args.services} more services", "rps": round(many_rps),
         "p50_ms": med(many_runs, "p50_ms"), "p99_ms": med(many_runs, "p99_ms"),
         "ratio": round(many_rps / ours_rps, 2), "goal": ">= 0.9"},
        {"target": "same, tracing off (MICRO_TRACE_SAMPLE=0)", "rps": round(off_rps),
         "p50_ms": med(off_runs, "p50_ms"), "p99_ms": med(off_runs, "p99_ms"),
         "ratio": round(ours_rps / off_rps, 2), "goal": "on/off >= 0.85"},
    ]  # fmt: skip
    print_table(
        f"POST /helloworld/call, {args.connections} connections, medians of {args.runs}", rows
    )
    write_results(
        "gateway",
        {"echo": echo_runs, "gateway": ours_runs, "gateway_many_services": many_runs,
         "gateway_tracing_off": off_runs,
         "ratio_to_echo": ours_rps / echo_rps, "ratio_many_to_one": many_rps / ours_rps,
         "ratio_tracing_on_to_off": ours_rps / off_rps},
    )  # fmt: skip


if __name__ == "__main__":
    main()
