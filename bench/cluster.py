"""The ``cluster`` profile: gateway throughput of three replicas against one, and how long
the services of a SIGKILLed replica take to answer again through a survivor.

    .venv/bin/python bench/cluster.py [--runs 3] [--seconds 10] [--kills 5] [--ttl 10 3]

What it measures (issue 9, "Performance (bench/cluster)"):

* ``POST /helloworld/call`` with wrk, through one lone replica's gateway, and through the
  three gateways of a three-replica cluster at once (one wrk per gateway, a third of the
  connections each; requests/s summed, p50/p99 of all their requests together). In both
  clusters helloworld runs ``--instances`` processes (3), all started by r0 (``micro run
  --instances 3`` through r0); every gateway balances over all of them. A third row
  loads only r0's gateway of the three-replica cluster, to tell "more gateways" apart from
  "more replicas". Runs are interleaved (order rotated), medians of ``--runs``. Both
  clusters are up during every run: the one not loaded idles, and its CPU is reported.
* Replica loss: a fresh three-replica cluster per kill (fresh prefix, so no kill sees
  the last one's state); helloworld runs through r0; r0 is SIGKILLed; from the kill, the
  time until helloworld shows on a survivor in the status read through r2 (the call
  ``micro status helloworld -o json`` makes, Runtime.Read, polled every 20 ms through
  r2's gateway; ``metadata.replica``), and until ``POST /helloworld/call`` through r1's
  gateway answers 200 (polled every 20 ms once r0's own helloworld process has exited:
  being a process of its own, it outlives the SIGKILL by a moment and may still answer,
  which is not the service back). Medians of ``--kills`` per ``--ttl``
  (``MICRO_REPLICA_TTL``; 10 is the product's default).

Everything shares this machine's cores: the replicas, the services, etcd, PostgreSQL,
NATS and wrk. Three replicas on two cores are not expected to beat one.

Backends: PostgreSQL and NATS (JetStream) already running (``--postgres``, ``--nats``), and
an etcd this script starts on free ports (``--etcd-binary``). Every cluster works under a
prefix of its own (PostgreSQL schema, NATS subjects and streams, etcd keys); its schema
is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import CpuMeter, print_table, write_results
from bench._platform import micro, start_platform
from bench.gateway.run import ensure_wrk

ROOT = Path(__file__).resolve().parents[1]
HELLOWORLD = str(ROOT / "examples" / "helloworld")
ADMIN_PASSWORD = "bench"
BODY = b'{"name":"John"}'
PRODUCT_TTL = 10.0
"""``MICRO_REPLICA_TTL`` when unset: the throughput clusters use it."""
POLL = 0.02
"""Seconds between two probes while waiting for a killed replica's service."""
PCT_STEP = 10
"""wrk reports its latency percentiles in steps of 1/PCT_STEP percent, for merging."""

LUA = """wrk.method = "POST"
wrk.body = '{"name":"John"}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout))
  local q = {}
  for i = 1, %(steps)d - 1 do q[#q + 1] = string.format("%%d", latency:percentile(i / %(step)d)) end
  io.write("PCTS " .. table.concat(q, " ") .. "\\n")
end
"""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, body: bytes, token: str = "", timeout: float = 2.0) -> tuple[int, bytes]:
    """One POST on a new connection: (status, body), or (0, b"") when it fails to connect
    or answer, so a poller can just try again."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("POST", parts.path, body, headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def wait_until(probe: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``probe`` until it holds; RuntimeError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def first_success(probe: Callable[[], bool], deadline: float) -> float | None:
    """The perf_counter time of the first probe that holds (probes every ``POLL`` s), or
    None if none did before ``deadline`` (a perf_counter time)."""
    while time.perf_counter() < deadline:
        if probe():
            return time.perf_counter()
        time.sleep(POLL)
    return None


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


# --------------------------------------------------------------------------- etcd


@contextlib.contextmanager
def etcd(binary: str) -> Iterator[str]:
    """A one-member etcd of our own, on free loopback ports in a temporary folder: the
    registry all the clusters share (each under its own key prefix). Yields its URL."""
    root = Path(tempfile.mkdtemp(prefix="micro-bench-etcd-"))
    client, peer = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    command = [
        binary,
        "--name=bench",
        f"--data-dir={root / 'data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=bench={peer}",
    ]
    with (root / "etcd.log").open("wb") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        try:
            wait_until(lambda: _etcd_healthy(client), 30, f"etcd at {client}")
        except RuntimeError as exc:
            tail = (root / "etcd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
        yield client
    finally:
        stop_process(proc, 15)
        shutil.rmtree(root, ignore_errors=True)


def _etcd_healthy(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2)
    try:
        conn.request("GET", "/health")
        return b'"true"' in conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


# --------------------------------------------------------------------------- clusters


@dataclass(frozen=True)
class Backends:
    """Where the shared backends are: every replica of every cluster uses them."""

    postgres: str
    nats: str
    etcd: str


@dataclass
class Replica:
    """One ``micro server`` of a cluster, with the CLI environment logged in to it."""

    name: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    edges: dict[str, str]

    @property
    def api(self) -> str:
        return f"http://{self.edges['api']}"

    def tree(self) -> list[psutil.Process]:
        """The server and everything it started (services, builds), alive now."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


@dataclass
class Cluster:
    """Replicas sharing one prefix; remembers the processes of replicas it killed, so
    whatever they left behind is stopped too."""

    prefix: str
    replicas: list[Replica]
    orphans: list[psutil.Process] = field(default_factory=list)

    def kill(self, index: int) -> float:
        """SIGKILL a replica (no goodbye: its lease has to lapse); the perf_counter time
        of the kill."""
        replica = self.replicas[index]
        self.orphans += replica.tree()[1:]
        killed_at = time.perf_counter()
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(timeout=30)
        return killed_at

    def pids(self) -> list[int]:
        return [r.process.pid for r in self.replicas if r.process.poll() is None]


@contextlib.contextmanager
def cluster(backends: Backends, count: int, ttl: float) -> Iterator[Cluster]:
    """``count`` replicas (r0, r1, ...) on a fresh prefix, each with its own home and
    ports; stopped, their leftovers killed, their schema dropped afterwards."""
    from micro.server.profiles import cluster_env

    prefix = f"bench_{uuid.uuid4().hex[:10]}"
    shared = cluster_env(store=backends.postgres, nats=backends.nats, registry=backends.etcd)
    shared.update(
        MICRO_PREFIX=prefix,
        MICRO_REPLICA_TTL=f"{ttl:g}",
        MICRO_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    root = Path(tempfile.mkdtemp(prefix="micro-bench-cluster-"))
    found = Cluster(prefix, [])
    try:
        for n in range(count):
            home = root / f"r{n}"
            home.mkdir()
            server, env, edges = start_platform(
                str(home), extra_env={**shared, "MICRO_REPLICA": f"r{n}"}
            )
            found.replicas.append(Replica(f"r{n}", server, env, edges))
        yield found
    finally:
        _stop(found)
        asyncio.run(_drop_schema(backends.postgres, prefix))
        shutil.rmtree(root, ignore_errors=True)


def _stop(found: Cluster) -> None:
    """SIGTERM every replica (which stops its services), then kill any process of theirs
    still there: a killed replica's services, or a stuck one's."""
    leftovers = list(found.orphans)
    for replica in found.replicas:
        leftovers += replica.tree()[1:]
    for replica in found.replicas:
        stop_process(replica.process, 30)
    _, alive = psutil.wait_procs(leftovers, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def run_helloworld(via: Replica, gateways: Sequence[Replica], instances: int = 1) -> str:
    """``micro run`` helloworld through ``via`` (so ``via`` runs it), wait until every
    gateway in ``gateways`` answers a call; an admin token for later calls."""
    micro(via.env, "run", "--instances", str(instances), HELLOWORLD, timeout=300)
    token = micro(via.env, "user", "token").strip()
    for gw in gateways:
        answers = functools.partial(_answers, f"{gw.api}/helloworld/call", token)
        wait_until(answers, 60, f"helloworld via {gw.name}")
    return token


def _answers(url: str, token: str) -> bool:
    """Whether a call to helloworld at ``url`` answers 200 within a second."""
    return post(url, BODY, token, timeout=1)[0] == 200


# --------------------------------------------------------------------------- throughput


@dataclass(frozen=True)
class WrkRun:
    """One wrk process's outcome, parsed from what its Lua ``done`` printed."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    percentiles_us: list[int]


def wrk_script(folder: Path) -> Path:
    """The POST body, headers and the ``done`` hook that prints fine-grained percentiles,
    written to ``folder``."""
    path = folder / "post.lua"
    path.write_text(LUA % {"steps": 100 * PCT_STEP, "step": PCT_STEP})
    return path


def wrk_many(urls: Sequence[str], seconds: int, connections: int, script: Path) -> list[WrkRun]:
    """One wrk (1 thread) per URL, all at once, sharing ``connections`` between them."""
    share = [connections // len(urls) + (i < connections % len(urls)) for i in range(len(urls))]
    procs = [
        subprocess.Popen(
            [ensure_wrk(), "-t1", f"-c{c}", f"-d{seconds}s", "-s", str(script), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url, c in zip(urls, share, strict=True)
    ]
    try:
        return [_parse_wrk(p.communicate(timeout=seconds + 60)[0]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _parse_wrk(out: str) -> WrkRun:
    bench = re.search(r"^BENCH (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    pcts = re.search(r"^PCTS (.*)$", out, re.M)
    if bench is None or pcts is None:
        raise RuntimeError(f"wrk printed no summary:\n{out[-2000:]}")
    requests, duration_us, status, sockets = (int(x) for x in bench.groups())
    return WrkRun(requests, duration_us / 1e6, status, sockets, [int(x) for x in pcts[1].split()])


def merged_percentile(runs: Sequence[WrkRun], pct: float) -> float:
    """The ``pct`` percentile (ms) of all requests of several wrk processes together:
    each process's latency distribution (known at 0.1 % steps) weighted by its requests."""
    total = sum(r.requests for r in runs)
    for x in sorted({v for r in runs for v in r.percentiles_us}):
        below = sum(r.requests * _share_at_most(r.percentiles_us, x) for r in runs)
        if below >= total * pct / 100:
            return x / 1000
    return max(max(r.percentiles_us) for r in runs) / 1000


def _share_at_most(percentiles: Sequence[int], x: int) -> float:
    """The fraction of a process's requests that took at most ``x`` µs (``percentiles``
    are its 0.1 %, 0.2 %, ... 99.9 % latencies, so ascending)."""
    return bisect.bisect_right(percentiles, x) / (len(percentiles) + 1)


def load_sample(urls: Sequence[str], args: argparse.Namespace, script: Path) -> dict[str, float]:
    """One measured run against ``urls`` together: requests/s summed, merged p50/p99."""
    runs = wrk_many(urls, args.seconds, args.connections, script)
    return {
        "rps": sum(r.requests / r.seconds for r in runs),
        "p50_ms": merged_percentile(runs, 50),
        "p99_ms": merged_percentile(runs, 99),
        "non_2xx": float(sum(r.non_2xx for r in runs)),
        "socket_errors": float(sum(r.socket_errors for r in runs)),
    }


@dataclass(frozen=True)
class Target:
    """A throughput configuration: which gateways get the load, which cluster that is,
    and which cluster idles meanwhile."""

    label: str
    urls: list[str]
    busy: Cluster
    idle: Cluster


def throughput(backends: Backends, args: argparse.Namespace) -> dict[str, object]:
    """Both clusters up, helloworld in each; interleaved wrk runs over the targets."""
    with (
        cluster(backends, 1, PRODUCT_TTL) as one,
        cluster(backends, 3, PRODUCT_TTL) as three,
        tempfile.TemporaryDirectory(prefix="micro-bench-wrk-") as folder,
    ):
        for c in (one, three):
            run_helloworld(c.replicas[0], c.replicas, args.instances)
            _check_anonymous(c.replicas)
        call = "/helloworld/call"
        targets = [
            Target("1 replica", [one.replicas[0].api + call], one, three),
            Target("3 replicas", [r.api + call for r in three.replicas], three, one),
            Target("3 replicas, r0's gateway only", [three.replicas[0].api + call], three, one),
        ]
        script = wrk_script(Path(folder))
        for t in targets:
            wrk_many(t.urls, 2, args.connections, script)  # warm up
        runs: dict[str, list[dict[str, float]]] = {t.label: [] for t in targets}
        for i in range(args.runs):
            for t in targets[i % len(targets) :] + targets[: i % len(targets)]:
                runs[t.label].append(_measured(t, args, script))
                print(f"  run {i + 1}/{args.runs} {t.label}: {runs[t.label][-1]}", flush=True)
    layout = (
        f"helloworld runs {args.instances} instances in each cluster, all started by r0 "
        f"(micro run --instances {args.instances} through r0); every gateway balances over "
        "them. 3 replicas: one wrk (1 thread) per gateway, the connections split between them."
    )
    return {
        "layout": layout,
        "runs": runs,
        "medians": {k: _medians(v) for k, v in runs.items()},
        "ratio_3_to_1": _medians(runs["3 replicas"])["rps"] / _medians(runs["1 replica"])["rps"],
    }


def _check_anonymous(replicas: Sequence[Replica]) -> None:
    """wrk calls helloworld without a token, as bench/gateway does: make sure every
    gateway serves it so, rather than measure how fast they refuse."""
    for r in replicas:
        status, body = post(f"{r.api}/helloworld/call", BODY)
        if status != 200:
            raise RuntimeError(f"{r.name}'s gateway refuses an anonymous call: {status} {body!r}")


def _measured(target: Target, args: argparse.Namespace, script: Path) -> dict[str, float]:
    """One run against ``target``, with the CPU its cluster and the idle one spent."""
    busy, idle = CpuMeter(target.busy.pids()), CpuMeter(target.idle.pids())
    busy.start()
    idle.start()
    sample = load_sample(target.urls, args, script)
    busy.stop()
    idle.stop()
    return {
        **sample,
        "cpu_s": busy.seconds,
        "idle_cluster_cpu_s": idle.seconds,
        # the machine's 1-minute load: other work on these cores skews a run
        "load_avg_1m": os.getloadavg()[0],
    }


def _medians(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# --------------------------------------------------------------------------- replica loss


def where(replica: Replica, token: str) -> list[tuple[str, str]]:
    """(status, replica) of helloworld as ``micro status helloworld`` through ``replica``
    shows it: Runtime.Read through its gateway (the CLI's call, without a process start
    per probe)."""
    status, body = post(f"{replica.api}/runtime/read", b'{"name":"helloworld"}', token, timeout=2)
    if status != 200:
        return []
    found = json.loads(body).get("services") or []
    return [(s.get("status", ""), s.get("metadata", {}).get("replica", "")) for s in found]


def cli_where(replica: Replica) -> list[tuple[str, str]]:
    """The same, through the real ``micro status helloworld -o json``: checked once per
    kill, so the fast probe is known to agree with the CLI."""
    out = micro(replica.env, "status", "helloworld", "-o", "json", timeout=60)
    found = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [(s.get("status", ""), s.get("metadata", {}).get("replica", "")) for s in found]


@dataclass
class StatusLog:
    """The status of helloworld through one replica, probed until a survivor shows it;
    each change is kept (seconds since the kill, [(status, replica)]) as evidence of how
    adoption went (pending on the dead replica, then starting and running on another)."""

    replica: Replica
    token: str
    killed_at: float
    survivors: frozenset[str]
    changes: list[tuple[float, list[tuple[str, str]]]] = field(default_factory=list)

    def adopted(self) -> bool:
        now = where(self.replica, self.token)
        if not self.changes or self.changes[-1][1] != now:
            self.changes.append((round(time.perf_counter() - self.killed_at, 3), now))
        return any(rep in self.survivors for _, rep in now)


def one_kill(backends: Backends, ttl: float) -> dict[str, object]:
    """A fresh three-replica cluster; helloworld through r0; SIGKILL r0; time until a
    survivor is shown running it (via r2) and until it answers (via r1's gateway)."""
    with cluster(backends, 3, ttl) as c:
        r0, r1, r2 = c.replicas
        token = run_helloworld(r0, [r1, r2])
        before = where(r2, token)
        if [rep for _, rep in before] != ["r0"]:
            raise RuntimeError(f"helloworld should run on r0 before the kill: {before}")
        call = f"{r1.api}/helloworld/call"
        killed_at = c.kill(0)
        log = StatusLog(r2, token, killed_at, frozenset({"r1", "r2"}))
        deadline = killed_at + ttl + 60
        with ThreadPoolExecutor(2) as pool:
            adopted = pool.submit(first_success, log.adopted, deadline)
            answered = pool.submit(_answers_again, call, token, c.orphans, deadline)
            adopted_at = adopted.result()
            exited_at, answered_at = answered.result()
        sample = _kill_sample(ttl, killed_at, adopted_at, answered_at)
        sample["own_services_exited_s"] = exited_at - killed_at
        sample["status_changes"] = log.changes
        sample["cli_status_after"] = cli_where(r2)
        return sample


def _answers_again(
    url: str, token: str, orphans: Sequence[psutil.Process], deadline: float
) -> tuple[float, float | None]:
    """When the killed replica's own service processes had exited, and the first 200
    after that. Until they exit (a second or two, on their own) they may still answer:
    that is the dead replica's leftover, not the service back on a survivor."""
    psutil.wait_procs(orphans, timeout=max(0.0, deadline - time.perf_counter()))
    exited_at = time.perf_counter()
    return exited_at, first_success(functools.partial(_answers, url, token), deadline)


def _kill_sample(
    ttl: float, killed_at: float, adopted_at: float | None, answered_at: float | None
) -> dict[str, object]:
    def since(t: float | None) -> float | None:
        return None if t is None else t - killed_at

    return {
        "ttl_s": ttl,
        "adopted_s": since(adopted_at),
        "answering_s": since(answered_at),
        "adopted_to_answering_s": (
            None if adopted_at is None or answered_at is None else answered_at - adopted_at
        ),
    }


def replica_loss(backends: Backends, args: argparse.Namespace) -> dict[str, object]:
    """``--kills`` kills per TTL, the TTLs interleaved."""
    runs: dict[str, list[dict[str, object]]] = {f"{t:g}": [] for t in args.ttl}
    for k in range(args.kills):
        for ttl in args.ttl:
            sample = one_kill(backends, ttl)
            runs[f"{ttl:g}"].append(sample)
            print(f"  kill {k + 1}/{args.kills} ttl={ttl:g}: {sample}", flush=True)
    return {"runs": runs, "medians": {t: _kill_medians(v) for t, v in runs.items()}}


def _kill_medians(runs: Sequence[dict[str, object]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in ("own_services_exited_s", "adopted_s", "answering_s", "adopted_to_answering_s"):
        values = [float(v) for r in runs if isinstance(v := r[key], (int, float))]
        out[key] = statistics.median(values) if values else None
    out["failed"] = float(sum(1 for r in runs if r["answering_s"] is None))
    return out


# --------------------------------------------------------------------------- report


def report_throughput(result: dict[str, object], args: argparse.Namespace) -> None:
    medians: dict[str, dict[str, float]] = result["medians"]  # type: ignore[assignment]
    base = medians["1 replica"]["rps"]
    rows = [
        {
            "target": label,
            "rps": round(m["rps"]),
            "ratio": round(m["rps"] / base, 2),
            "p50_ms": m["p50_ms"],
            "p99_ms": m["p99_ms"],
            "non_2xx": int(m["non_2xx"]),
            "cpu_s": m["cpu_s"],
            "idle_cpu_s": m["idle_cluster_cpu_s"],
        }
        for label, m in medians.items()
    ]
    print_table(
        f"POST /helloworld/call, {args.connections} connections in all, {args.seconds} s, "
        f"medians of {args.runs}; helloworld: {args.instances} instances run by r0 "
        f"({os.cpu_count()} cores shared by everything)",
        rows,
    )


def report_loss(result: dict[str, object], args: argparse.Namespace) -> None:
    medians: dict[str, dict[str, float | None]] = result["medians"]  # type: ignore[assignment]
    rows = [
        {
            "MICRO_REPLICA_TTL": f"{ttl} s" + (" (default)" if float(ttl) == PRODUCT_TTL else ""),
            "r0_services_exited_s": m["own_services_exited_s"],
            "adopted_s": m["adopted_s"],
            "answering_s": m["answering_s"],
            "adopted_to_answering_s": m["adopted_to_answering_s"],
            "failed": int(m["failed"] or 0),
        }
        for ttl, m in medians.items()
    ]
    print_table(
        f"SIGKILL r0 of 3 -> helloworld answers via r1, medians of {args.kills} "
        "(seconds from the kill)",
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="throughput runs (0: skip)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per throughput run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--instances", type=int, default=3, help="helloworld processes")
    parser.add_argument("--kills", type=int, default=5, help="kills per TTL (0: skip)")
    parser.add_argument("--ttl", type=float, nargs="+", default=[PRODUCT_TTL, 3.0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--etcd-binary", default=shutil.which("etcd") or "/usr/bin/etcd")
    args = parser.parse_args()
    data: dict[str, object] = {"config": {k: v for k, v in vars(args).items() if k != "postgres"}}
    with etcd(args.etcd_binary) as etcd_url:
        backends = Backends(args.postgres, args.nats, etcd_url)
        if args.runs > 0:
            ensure_wrk()
            data["throughput"] = throughput(backends, args)
            report_throughput(data["throughput"], args)  # type: ignore[arg-type]
        if args.kills > 0:
            data["replica_loss"] = replica_loss(backends, args)
            report_loss(data["replica_loss"], args)  # type: ignore[arg-type]
    print(f"\nwrote {write_results('cluster', data)}")


if __name__ == "__main__":
    main()
