"""The runtime: ``micro run`` to running, twenty services at once, ``micro logs -f``.

    .venv/bin/python bench/runtime.py [--runs 5] [--services 20]

Targets (issue "Runtime and micro new"):

* ``micro run`` of helloworld with its venv cached, to running and registered: <= 3 s
  median. Side by side: the raw thing, ``python main.py`` started by hand until it logs
  that it registered (no upload, no supervisor).
* ``--services`` services at once: the server's and each service's RSS, and the idle CPU
  of the server and of all services together.
* ``micro logs -f`` shows a new line within 0.5 s. Side by side: ``tail -F`` of the very
  log file the runtime writes.
* The sandbox's cost (as root): starting ``python -c pass`` through the launcher, as a
  namespace's user in a mount namespace of its own, vs starting it directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import print_table, write_results
from bench._platform import micro, start_platform

ROOT = Path(__file__).resolve().parents[1]
HELLOWORLD = ROOT / "examples" / "helloworld"

SAYER = textwrap.dedent(
    """
    import msgspec

    import micro


    class Text(msgspec.Struct):
        text: str


    class Sayer:
        async def say(self, req: Text) -> Text:
            print(req.text, flush=True)
            return req


    service = micro.Service("sayer")
    service.handle(Sayer())
    service.run()
    """
)


def raw_start(env: dict[str, str]) -> float:
    """``python main.py`` by hand, until it logs its registration."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HELLOWORLD / "main.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Registered [service] helloworld" in line:
            break
    elapsed = time.perf_counter() - t0
    proc.terminate()
    proc.wait(timeout=15)
    return elapsed


def micro_run(env: dict[str, str]) -> float:
    """``micro run`` until it returns (the service is running and registered), then kill."""
    t0 = time.perf_counter()
    micro(env, "run", str(HELLOWORLD))
    elapsed = time.perf_counter() - t0
    micro(env, "kill", "helloworld")
    return elapsed


def tree_cpu(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def many_services(env: dict[str, str], server_pid: int, count: int) -> dict[str, float]:
    names = [f"hello{i:02d}" for i in range(count)]
    t0 = time.perf_counter()
    for name in names:
        micro(env, "run", str(HELLOWORLD), "--name", name)
    all_running_s = time.perf_counter() - t0
    time.sleep(3.0)  # idle: let start-up settle
    server = psutil.Process(server_pid)
    services = [c for c in server.children() if "main.py" in " ".join(c.cmdline())]
    assert len(services) == count, f"{len(services)} service processes, not {count}"
    window = 10.0
    server_before = server.cpu_times()
    services_before = sum(tree_cpu(s) for s in services)
    time.sleep(window)
    server_after = server.cpu_times()
    services_after = sum(tree_cpu(s) for s in services)
    rss = [s.memory_info().rss / 2**20 for s in services]
    result = {
        "services": float(count),
        "start_all_s": all_running_s,
        "server_rss_mb": server.memory_info().rss / 2**20,
        "service_rss_median_mb": statistics.median(rss),
        "service_rss_max_mb": max(rss),
        "server_idle_cpu_pct": 100
        * ((server_after.user + server_after.system) - (server_before.user + server_before.system))
        / window,
        "services_idle_cpu_pct": 100 * (services_after - services_before) / window,
    }
    for name in names:
        micro(env, "kill", name)
    return result


def _first_line(proc: subprocess.Popen[str], want: str, timeout: float) -> float:
    """When ``want`` appears on proc's stdout (perf_counter), reading without blocking."""
    assert proc.stdout is not None
    deadline = time.perf_counter() + timeout
    buffer = ""
    fd = proc.stdout.fileno()
    while time.perf_counter() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.01)
        if ready:
            buffer += os.read(fd, 65536).decode(errors="replace")
            if want in buffer:
                return time.perf_counter()
    raise TimeoutError(f"{want!r} did not appear")


def logs_latency(env: dict[str, str], home: str, runs: int) -> dict[str, list[float]]:
    folder = Path(tempfile.mkdtemp(prefix="micro-sayer-"))
    (folder / "main.py").write_text(SAYER)
    micro(env, "run", str(folder), "--name", "sayer")
    logfile = Path(home) / "server" / "runtime" / "logs" / "micro" / "sayer" / "latest" / "0.log"
    follow = subprocess.Popen(
        [sys.executable, "-m", "micro", "logs", "sayer", "-f", "-n", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    tail = subprocess.Popen(
        ["tail", "-n", "0", "-F", str(logfile)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.5)  # both followers attached
    ours: list[float] = []
    raw: list[float] = []
    try:
        for i in range(runs):
            text = f"line-{i}-{time.time_ns()}"
            t0 = time.perf_counter()
            micro(env, "call", "sayer", "Sayer.Say", json.dumps({"text": text}))
            seen_ours = _first_line(follow, text, 5.0)
            seen_raw = _first_line(tail, text, 5.0)
            # the call's own round trip is in both; what differs is the path to the reader
            ours.append(seen_ours - t0)
            raw.append(seen_raw - t0)
    finally:
        follow.terminate()
        tail.terminate()
        micro(env, "kill", "sayer")
    return {"micro_logs_f_s": ours, "tail_F_s": raw}


async def _launches(runs: int) -> dict[str, list[float]]:
    from micro.runtime.sandbox import Jail, Place, Shared

    folder = Path(tempfile.mkdtemp(prefix="micro-bench-jail-"))
    place = Place(app=folder, home=folder, venv=folder)
    argv = [sys.executable, "-c", "pass"]
    env = {"PATH": os.defpath}
    jail, shared = Jail([folder / "hidden"]), Shared(insecure=True)
    await jail.hand_over("bench", folder)  # makes the user, once
    times: dict[str, list[float]] = {"direct_ms": [], "jail_ms": []}
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        for key, sandbox in (("direct_ms", shared), ("jail_ms", jail)):
            t0 = time.perf_counter()
            proc = await sandbox.spawn("bench", place, argv, env)
            await proc.communicate()
            assert proc.returncode == 0, key
            times[key].append(1000 * (time.perf_counter() - t0))
    return times


def launch_overhead(runs: int) -> dict[str, float]:
    """Medians of starting ``python -c pass`` to its exit, directly and through the jail."""
    times = asyncio.run(_launches(runs))
    direct, jail = statistics.median(times["direct_ms"]), statistics.median(times["jail_ms"])
    return {"direct_ms": direct, "jail_ms": jail, "overhead_ms": jail - direct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--services", type=int, default=20)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="micro-bench-runtime-")
    server, env, _ = start_platform(home, log_level="info")
    try:
        micro_run(env)  # builds the venv once: later runs find it cached
        raw_runs, ours_runs = [], []
        for _ in range(args.runs):  # interleaved, so machine noise hits both alike
            raw_runs.append(raw_start(env))
            ours_runs.append(micro_run(env))
        many = many_services(env, server.pid, args.services)
        logs = logs_latency(env, home, args.runs)
        launches = launch_overhead(4 * args.runs) if os.geteuid() == 0 else {}
    finally:
        server.terminate()
        server.wait(timeout=60)
    raw_med, ours_med = statistics.median(raw_runs), statistics.median(ours_runs)
    print_table(
        f"micro run helloworld (venv cached) to running, medians of {args.runs}",
        [
            {"target": "python main.py by hand", "median_s": round(raw_med, 3)},
            {
                "target": "micro run",
                "median_s": round(ours_med, 3),
                "ratio": round(ours_med / raw_med, 2),
                "goal_s": 3.0,
                "ok": "yes" if ours_med <= 3.0 else "NO",
            },
        ],
    )
    print_table(
        f"{args.services} services at once (idle)",
        [{"measure": k, "value": round(v, 2)} for k, v in many.items()],
    )
    logs_rows = []
    for key, values in logs.items():
        med = statistics.median(values)
        logs_rows.append({"reader": key, "median_s": round(med, 3), "max_s": round(max(values), 3)})
    logs_rows[0]["goal_s"] = 0.5
    logs_rows[0]["ok"] = "yes" if statistics.median(logs["micro_logs_f_s"]) <= 0.5 else "NO"
    print_table("a printed line reaches the reader (call included)", logs_rows)
    if launches:
        print_table(
            f"python -c pass started to exit, medians of {4 * args.runs} (as root)",
            [{"measure": k, "value": round(v, 1)} for k, v in launches.items()],
        )
    write_results(
        "runtime",
        {
            "micro_run_s": ours_runs,
            "raw_start_s": raw_runs,
            "micro_run_median_s": ours_med,
            "raw_start_median_s": raw_med,
            "many_services": many,
            "logs": logs,
            "launch": launches,
        },
    )


if __name__ == "__main__":
    main()
