"""Shared benchmark harness: server processes, CPU accounting, load, reporting.

Why it exists: every benchmark in ``bench/`` must measure the same way so the
numbers are comparable across targets and across time:

* the server always runs in a separate process (``start_server``), started
  from an argv and considered up once it prints ``READY <host:port>``;
* server cost is CPU time (user+system) of that process tree, sampled only
  around the measured window (``CpuMeter``), so warmup and startup are out;
* load is closed-loop: ``concurrency`` asyncio workers share one bounded call
  budget and a time cap (``run_load``), latency per call by perf_counter_ns;
* repeated runs are summarised by medians (``median_of``), printed as a plain
  table (``print_table``) and stored as JSON under ``bench/results/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import inspect
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from bench._serve import check_loopback

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

__all__ = [
    "BENCH_DIR",
    "REPO_ROOT",
    "RESULTS_DIR",
    "CpuMeter",
    "Result",
    "ServerProcess",
    "Window",
    "check_loopback",
    "machine_info",
    "median_of",
    "print_table",
    "run_load",
    "start_server",
    "windows",
    "write_results",
]


# --------------------------------------------------------------------------- servers


@dataclass
class ServerProcess:
    """A started server: its process and the address it announced."""

    proc: asyncio.subprocess.Process
    host: str
    port: int
    stderr_path: Path
    drain_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stderr_tail(self, limit: int = 2000) -> str:
        """Last bytes of the server's stderr, for error messages."""
        return _tail(self.stderr_path, limit)


@contextlib.asynccontextmanager
async def start_server(
    argv: Sequence[str],
    *,
    ready_timeout: float = 60.0,
    stop_timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[ServerProcess]:
    """Run ``argv`` as a subprocess and yield once it printed ``READY host:port``.

    The repo root is put on PYTHONPATH so servers can ``import bench``.  Other
    stdout lines before READY are ignored; stdout keeps being drained
    afterwards so a chatty server never blocks on a full pipe.  stderr goes to
    a temp file whose tail is reported if startup fails.  On exit the server
    gets SIGTERM, then SIGKILL after ``stop_timeout``.
    """
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    fd, name = tempfile.mkstemp(prefix="bench-server-", suffix=".stderr")
    stderr_path = Path(name)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=fd,
            env=child_env,
            cwd=str(REPO_ROOT),
        )
    finally:
        os.close(fd)
    drain: asyncio.Task[None] | None = None
    try:
        try:
            host, port = await asyncio.wait_for(_await_ready(proc), ready_timeout)
        except (TimeoutError, EOFError) as exc:
            tail = _tail(stderr_path)
            raise RuntimeError(f"server {list(argv)} did not get ready ({exc!r}):\n{tail}") from exc
        drain = asyncio.create_task(_drain(proc))
        yield ServerProcess(proc, check_loopback(host), port, stderr_path, drain)
    finally:
        await _stop(proc, stop_timeout)
        if drain is not None:
            drain.cancel()
        _remove(stderr_path)


def _tail(path: Path, limit: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-limit:]
    return ""


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _await_ready(proc: asyncio.subprocess.Process) -> tuple[str, int]:
    assert proc.stdout is not None
    while True:
        line = await proc.stdout.readline()
        if not line:
            raise EOFError(f"server exited with code {await proc.wait()} before READY")
        text = line.decode(errors="replace").strip()
        if text.startswith("READY "):
            host, _, port = text.split()[1].rpartition(":")
            return host.strip("[]"), int(port)


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.read(65536):
        pass


async def _stop(proc: asyncio.subprocess.Process, timeout: float) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# --------------------------------------------------------------------------- CPU


class Window(Protocol):
    """Something told when the measured window opens and closes."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class CpuMeter:
    """User+system CPU seconds of some processes and their children, over a window.

    Children are looked up at both ends of the window; a child that exits
    inside the window loses its share (acceptable: bench servers do not fork
    during a run).

    Resolution is the kernel's clock tick (10 ms on Linux), so keep measured
    windows to at least ~0.3 s of server CPU for numbers within a few percent.
    """

    def __init__(self, pids: Iterable[int]) -> None:
        self._pids = list(pids)
        self._before: dict[int, float] = {}
        self.seconds = 0.0

    def _sample(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for pid in self._pids:
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    t = p.cpu_times()
                    out[p.pid] = t.user + t.system
        return out

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> None:
        after = self._sample()
        self.seconds = sum(v - self._before.get(pid, 0.0) for pid, v in after.items())


class _Windows:
    """Fan one start/stop out to several windows."""

    def __init__(self, windows: Sequence[Window]) -> None:
        self._windows = windows

    def start(self) -> None:
        for w in self._windows:
            w.start()

    def stop(self) -> None:
        for w in self._windows:
            w.stop()


def windows(*ws: Window) -> Window:
    """Combine windows (e.g. a server meter and a broker meter) into one."""
    return _Windows(ws)


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Result:
    """Outcome of one measured phase."""

    calls: int
    seconds: float
    calls_per_s: float
    p50_us: float
    p99_us: float

    @classmethod
    def from_latencies(cls, latencies_ns: Sequence[int], elapsed_ns: int) -> Result:
        """Summarise per-call latencies; shared so external clients (nameko)
        are summarised exactly like in-process ones."""
        if not latencies_ns:
            raise ValueError("no call completed in the measured window")
        lat = sorted(latencies_ns)
        secs = elapsed_ns / 1e9
        return cls(
            calls=len(lat),
            seconds=secs,
            calls_per_s=len(lat) / secs,
            p50_us=_percentile(lat, 50) / 1e3,
            p99_us=_percentile(lat, 99) / 1e3,
        )

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _percentile(sorted_values: Sequence[int], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every value was observed)."""
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return float(sorted_values[int(rank) - 1])


async def _phase(
    call: Callable[[], Awaitable[None]],
    concurrency: int,
    budget: int,
    max_seconds: float,
    latencies: list[int] | None,
) -> None:
    """Run ``budget`` calls (or until ``max_seconds``) across ``concurrency`` workers."""
    remaining = budget
    clock = time.perf_counter_ns
    deadline = clock() + int(max_seconds * 1e9)

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and clock() < deadline:
            remaining -= 1
            t0 = clock()
            await call()
            if latencies is not None:
                latencies.append(clock() - t0)

    # Hard cap a bit past the soft deadline so one stuck call cannot hang a run.
    async with asyncio.timeout(max_seconds + 30.0):
        async with asyncio.TaskGroup() as tg:
            for _ in range(max(1, min(concurrency, budget))):
                tg.create_task(worker())


async def run_load(
    call: Callable[[], Awaitable[None]],
    *,
    concurrency: int,
    calls: int,
    warmup: int,
    max_seconds: float = 30.0,
    window: Window | None = None,
) -> Result:
    """Closed-loop load: ``concurrency`` workers share a budget of ``calls``.

    ``warmup`` calls (same concurrency, not recorded) run first; then
    ``window.start()``, the measured calls, ``window.stop()``.  Each phase also
    stops issuing new calls after ``max_seconds``, so slow targets are bounded
    in time as well as count; ``Result.calls`` says how many really ran.
    """
    if warmup > 0:
        await _phase(call, concurrency, warmup, max_seconds, None)
    latencies: list[int] = []
    if window is not None:
        window.start()
    t0 = time.perf_counter_ns()
    try:
        await _phase(call, concurrency, calls, max_seconds, latencies)
    finally:
        elapsed = time.perf_counter_ns() - t0
        if window is not None:
            window.stop()
    return Result.from_latencies(latencies, elapsed)


Sample = Mapping[str, float]


async def median_of(
    n: int, fn: Callable[[], Sample | Awaitable[Sample]]
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Call ``fn`` ``n`` times; return (per-key medians, the raw samples).

    A key missing from some samples gets the median of those that have it.
    ``fn`` may be sync or async.
    """
    samples: list[dict[str, float]] = []
    for _ in range(n):
        out = fn()
        if inspect.isawaitable(out):
            out = await out
        samples.append(dict(out))
    keys: dict[str, None] = {}
    for s in samples:
        keys.update(dict.fromkeys(s))
    medians = {k: statistics.median(s[k] for s in samples if k in s) for k in keys}
    return medians, samples


# --------------------------------------------------------------------------- output


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:  # NaN
            return "-"
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def print_table(title: str, rows: Sequence[Mapping[str, object]], file: Any = None) -> None:
    """Print rows (dicts; columns in first-seen key order) as an aligned table.

    Numbers are right-aligned, text left-aligned; missing cells show ``-``.
    """
    out = file if file is not None else sys.stdout
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    header = list(cols)
    cells = [[_fmt(r.get(c)) for c in header] for r in rows]
    numeric = [
        all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in header
    ]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    print(f"\n{title}", file=out)
    print(line(header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print(line(row), file=out)
    out.flush()


def machine_info() -> dict[str, object]:
    """What the numbers were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def write_results(name: str, data: object) -> Path:
    """Write ``bench/results/<name>.json`` atomically, with timestamp and machine info."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    doc = {
        "name": name,
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "data": data,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path
