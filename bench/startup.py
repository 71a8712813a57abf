"""Start-up and footprint: how fast ``micro server`` answers, how fast ``micro services``
returns, and how much memory an idle server and an idle helloworld hold.

    .venv/bin/python bench/startup.py [--runs 5]

Targets (issue "Foundation"): server ready <= 1 s, ``micro services`` <= 0.2 s wall,
idle server <= 80 MB RSS, idle helloworld <= 40 MB RSS. Medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
READY = "micro server ready: proxy "


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(
        MICRO_HOME=home,
        MICRO_PROXY_ADDRESS="127.0.0.1:0",
        MICRO_LOG_LEVEL="warning",
        MICRO_ADMIN_PASSWORD="bench",
    )
    return env


def _call_ok(env: dict[str, str]) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "micro", "call", "registry", "Registry.ListServices", "{}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.returncode == 0


def one_run() -> dict[str, float]:
    """Start a server and a helloworld; measure; stop both."""
    home = tempfile.mkdtemp(prefix="micro-startup-")
    env = _env(home)
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "micro", "server"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    proxy = ""
    for line in server.stdout:
        if line.startswith(READY):
            proxy = line[len(READY) :].strip()
            break
    ready_s = time.perf_counter() - started
    env["MICRO_PROXY"] = proxy
    assert _call_ok(env), "the server did not answer a call after its ready line"
    login = subprocess.run(
        [sys.executable, "-m", "micro", "login", "--username", "admin", "--password", "bench"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert login.returncode == 0, login.stderr
    env["MICRO_LOG_LEVEL"] = "info"
    service = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "helloworld" / "main.py")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert service.stderr is not None
    for line in service.stderr:  # ends when the service does: a failure cannot hang here
        if "Registered [service] helloworld" in line:
            break
    else:
        raise RuntimeError("helloworld exited before registering")
    t0 = time.perf_counter()
    listed = subprocess.run(
        [sys.executable, "-m", "micro", "services"], env=env, capture_output=True, text=True
    )
    services_s = time.perf_counter() - t0
    assert "helloworld" in listed.stdout, listed.stdout + listed.stderr
    time.sleep(1.0)  # idle: let start-up garbage settle before reading RSS
    server_rss = psutil.Process(server.pid).memory_info().rss / 2**20
    service_rss = psutil.Process(service.pid).memory_info().rss / 2**20
    for proc in (service, server):
        proc.terminate()
    for proc in (service, server):
        proc.wait(timeout=10)
    return {
        "server_ready_s": ready_s,
        "micro_services_s": services_s,
        "server_rss_mb": server_rss,
        "helloworld_rss_mb": service_rss,
    }


TARGETS = {
    "server_ready_s": 1.0,
    "micro_services_s": 0.2,
    "server_rss_mb": 80.0,
    "helloworld_rss_mb": 40.0,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    rows = []
    data: dict[str, object] = {"runs": runs}
    for key, target in TARGETS.items():
        values = [r[key] for r in runs]
        median = statistics.median(values)
        data[key] = median
        rows.append(
            {
                "measure": key,
                "median": round(median, 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
                "target": target,
                "ok": "yes" if median <= target else "NO",
            }
        )
    print_table(f"micro server start-up and footprint (medians of {args.runs})", rows)
    write_results("startup", data)


if __name__ == "__main__":
    main()
