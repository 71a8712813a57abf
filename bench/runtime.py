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

Targets (issue "Runtime for real repositories and safe deploys"):

* ``micro run`` of a folder of a monorepo (its venv cached) to running: <= 1.5x a
  single-folder run of the same service. Both forms are measured: the folder of a local
  work tree (sent with the shared package it names) and the git source
  ``file://.../mono.git//services/hello@v1`` (the clone cached per ref).
* A rolling update of a 2-instance service to all-new (``micro update`` returns once the
  new instances serve), median of ``--runs``, under calls through the gateway one after
  another: calls failed during it, target 0.
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
import threading
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


HELLO = textwrap.dedent(
    """
    import msgspec

    import micro
    from shared import greeting


    class Empty(msgspec.Struct):
        pass


    class Text(msgspec.Struct):
        text: str


    class Hello:
        async def greet(self, req: Empty) -> Text:
            return Text(greeting("hello"))


    service = micro.Service("hello")
    service.handle(Hello())
    service.run()
    """
)
SHARED = 'VERSION = "VALUE"\n\ndef greeting(who: str) -> str:\n    return f"{who} from {VERSION}"\n'


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=b@b", "-c", "user.name=b", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def make_monorepo(root: Path) -> tuple[Path, Path, Path]:
    """(the work tree's service folder, the bare repository, a single-folder copy of the
    service with the shared module inlined)."""
    work = root / "work"
    hello = work / "services" / "hello"
    hello.mkdir(parents=True)
    (hello / "main.py").write_text(HELLO)
    (hello / "requirements.txt").write_text("../../libs/shared\n")
    shared = work / "libs" / "shared"
    (shared / "src" / "shared").mkdir(parents=True)
    (shared / "pyproject.toml").write_text('[project]\nname = "shared"\nversion = "0"\n')
    (shared / "src" / "shared" / "__init__.py").write_text(SHARED.replace("VALUE", "v1"))
    for i in range(20):  # other services and code of the repository, not needed by hello
        other = work / "services" / f"other{i:02d}"
        other.mkdir()
        (other / "main.py").write_text(HELLO.replace('"hello"', f'"other{i:02d}"'))
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "v1")
    _git(work, "tag", "v1")
    bare = root / "mono.git"
    _git(root, "clone", "-q", "--bare", str(work), str(bare))
    single = root / "single" / "hello"
    (single / "shared").mkdir(parents=True)
    (single / "main.py").write_text(HELLO)
    (single / "shared" / "__init__.py").write_text(SHARED.replace("VALUE", "v1"))
    return hello, bare, single


def timed_run(env: dict[str, str], *source: str) -> float:
    """``micro run`` until it returns (running and registered), then kill."""
    t0 = time.perf_counter()
    micro(env, "run", *source)
    elapsed = time.perf_counter() - t0
    micro(env, "kill", "hello")
    return elapsed


def monorepo_runs(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """``micro run`` of a monorepo's folder (local work tree, and git) vs a single folder."""
    root = Path(tempfile.mkdtemp(prefix="micro-bench-mono-"))
    folder, bare, single = make_monorepo(root)
    git_source = f"file://{bare}//services/hello@v1"
    for source in (str(single), str(folder), git_source):  # venvs built, clone cached
        timed_run(env, source)
    times: dict[str, list[float]] = {"single_folder_s": [], "monorepo_folder_s": [], "git_s": []}
    for _ in range(runs):  # interleaved, so machine noise hits all alike
        times["single_folder_s"].append(timed_run(env, str(single)))
        times["monorepo_folder_s"].append(timed_run(env, str(folder)))
        times["git_s"].append(timed_run(env, git_source))
    return times


def _load(url: str, stop: threading.Event, answers: list[int]) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    while not stop.is_set() and len(answers) < 100_000:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            conn.request(
                "POST", parts.path, body=b"{}", headers={"content-type": "application/json"}
            )
            answers.append(conn.getresponse().status)
        except OSError:
            answers.append(0)
        finally:
            conn.close()
        stop.wait(0.005)


def rolling_updates(env: dict[str, str], api: str, runs: int) -> dict[str, list[float]]:
    """A 2-instance service updated ``runs`` times under load through the gateway: each
    update's time and the calls that failed during it."""
    folder = Path(tempfile.mkdtemp(prefix="micro-bench-roll-")) / "hello"
    (folder / "shared").mkdir(parents=True)
    (folder / "main.py").write_text(HELLO)
    (folder / "shared" / "__init__.py").write_text(SHARED.replace("VALUE", "v0"))
    micro(env, "run", str(folder), "--instances", "2")
    result: dict[str, list[float]] = {"update_s": [], "failed_calls": [], "calls": []}
    try:
        for i in range(runs):
            (folder / "shared" / "__init__.py").write_text(SHARED.replace("VALUE", f"v{i + 1}"))
            stop, answers = threading.Event(), list[int]()
            load = threading.Thread(
                target=_load, args=(f"http://{api}/hello/hello/greet", stop, answers)
            )
            load.start()
            time.sleep(0.3)
            t0 = time.perf_counter()
            micro(env, "update", str(folder))
            result["update_s"].append(time.perf_counter() - t0)
            time.sleep(0.3)
            stop.set()
            load.join()
            result["failed_calls"].append(float(sum(1 for a in answers if a != 200)))
            result["calls"].append(float(len(answers)))
    finally:
        micro(env, "kill", "hello")
    return result


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
    parser.add_argument("--only", choices=["deploys"], help="Only the issue 15 measures.")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="micro-bench-runtime-")
    server, env, edges = start_platform(home, log_level="info")
    if args.only == "deploys":
        try:
            deploys(env, edges["api"], args.runs)
        finally:
            server.terminate()
            server.wait(timeout=60)
        return
    try:
        micro_run(env)  # builds the venv once: later runs find it cached
        raw_runs, ours_runs = [], []
        for _ in range(args.runs):  # interleaved, so machine noise hits both alike
            raw_runs.append(raw_start(env))
            ours_runs.append(micro_run(env))
        many = many_services(env, server.pid, args.services)
        logs = logs_latency(env, home, args.runs)
        launches = launch_overhead(4 * args.runs) if os.geteuid() == 0 else {}
        deploys(env, edges["api"], args.runs)
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


def deploys(env: dict[str, str], api: str, runs: int) -> None:
    """The issue 15 measures (see the module docstring), printed and written."""
    mono = monorepo_runs(env, runs)
    rolls = rolling_updates(env, api, runs)
    single = statistics.median(mono["single_folder_s"])
    rows = [{"source": "single folder", "median_s": round(single, 3)}]
    for key, label in (("monorepo_folder_s", "monorepo folder"), ("git_s", "git //folder@v1")):
        med = statistics.median(mono[key])
        ratio = med / single
        rows.append(
            {
                "source": label,
                "median_s": round(med, 3),
                "ratio": round(ratio, 2),
                "goal": "<= 1.5x",
                "ok": "yes" if ratio <= 1.5 else "NO",
            }
        )
    print_table(f"micro run to running (venv cached), medians of {runs}", rows)
    failed = sum(rolls["failed_calls"])
    print_table(
        f"rolling update of 2 instances under gateway load, {runs} updates",
        [
            {
                "update_median_s": round(statistics.median(rolls["update_s"]), 3),
                "calls": int(sum(rolls["calls"])),
                "failed_calls": int(failed),
                "goal": 0,
                "ok": "yes" if failed == 0 else "NO",
            }
        ],
    )
    write_results(
        "runtime_deploys",
        {
            "monorepo": mono,
            "monorepo_folder_ratio": statistics.median(mono["monorepo_folder_s"]) / single,
            "git_folder_ratio": statistics.median(mono["git_s"]) / single,
            "rolling_update": rolls,
            "rolling_update_median_s": statistics.median(rolls["update_s"]),
            "rolling_update_failed_calls": failed,
        },
    )


if __name__ == "__main__":
    main()
