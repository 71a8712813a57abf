"""Driver side of the Nameko baseline (runs in the main venv, not eventlet).

Starts nothing itself: ``bench/rpc/targets.py`` wires these functions into a
``Target`` whose server is ``service.py`` and whose load runs in a
``client.py`` subprocess (see its docstring for the WARM/GO/RESULT lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from urllib.parse import urlsplit

import psutil

from bench._harness import BENCH_DIR, REPO_ROOT, Result, Window, check_loopback

HERE = BENCH_DIR / "rpc" / "nameko_echo"
VENV_PYTHON = BENCH_DIR / ".venv-nameko" / "bin" / "python"
AMQP_URI = os.environ.get("BENCH_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")


def skip_reason() -> str | None:
    """Why the nameko rows cannot run here, or None if they can."""
    if not VENV_PYTHON.exists():
        return f"{VENV_PYTHON.parent.parent.name} missing (run bench/rpc/nameko_echo/setup.sh)"
    url = urlsplit(AMQP_URI)
    host, port = url.hostname or "127.0.0.1", url.port or 5672
    try:
        check_loopback(host)
    except ValueError as exc:
        return str(exc)
    try:
        with socket.create_connection((host, port), timeout=2.0):
            pass
    except OSError as exc:
        return f"RabbitMQ unreachable at {host}:{port} ({exc.strerror or exc})"
    return None


def server_argv(tag: str) -> list[str]:
    return [
        str(VENV_PYTHON),
        str(HERE / "service.py"),
        "serve",
        "--amqp-uri",
        AMQP_URI,
        "--tag",
        tag,
    ]


def broker_pids() -> list[int]:
    """The local RabbitMQ (Erlang VM) process: its CPU is part of nameko's cost."""
    pids = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == "beam.smp":
            with contextlib.suppress(psutil.Error):
                if "rabbit" in " ".join(p.cmdline()):
                    pids.append(p.pid)
    return pids


async def run_client(
    *,
    tag: str,
    concurrency: int,
    calls: int,
    warmup: int,
    max_seconds: float,
    window: Window | None,
) -> Result:
    """Run client.py for one measured phase; ``window`` brackets GO..RESULT."""
    proc = await asyncio.create_subprocess_exec(
        str(VENV_PYTHON),
        str(HERE / "client.py"),
        "--amqp-uri",
        AMQP_URI,
        "--tag",
        tag,
        "--concurrency",
        str(concurrency),
        "--calls",
        str(calls),
        "--warmup",
        str(warmup),
        "--max-seconds",
        str(max_seconds),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO_ROOT),
        limit=2**26,  # the RESULT line carries every latency
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr_task = asyncio.create_task(proc.stderr.read())
    # Startup (64 connections) + warmup + measured phase, each time-capped.
    budget = 60.0 + 2 * (max_seconds + 30.0)
    try:
        async with asyncio.timeout(budget):
            await _expect(proc.stdout, b"WARM")
            if window is not None:
                window.start()
            proc.stdin.write(b"GO\n")
            await proc.stdin.drain()
            line = await _expect(proc.stdout, b"RESULT ")
            if window is not None:
                window.stop()
            data = json.loads(line[len(b"RESULT ") :])
            code = await proc.wait()
    except Exception as exc:
        await _kill(proc)
        err = (await stderr_task).decode(errors="replace")[-2000:]
        raise RuntimeError(f"nameko client failed ({exc!r}):\n{err}") from exc
    finally:
        await _kill(proc)  # no-op unless cancelled
    if code != 0:
        err = (await stderr_task).decode(errors="replace")[-2000:]
        raise RuntimeError(f"nameko client exited {code}:\n{err}")
    stderr_task.cancel()
    return Result.from_latencies(data["latencies_ns"], data["elapsed_ns"])


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def _expect(stream: asyncio.StreamReader, prefix: bytes) -> bytes:
    """Next stdout line starting with ``prefix``; other lines (library chatter) are skipped."""
    while True:
        line = await stream.readline()
        if not line:
            raise EOFError(f"nameko client exited before {prefix.decode().strip()}")
        if line.startswith(prefix):
            return line
