"""One OS process of a service: started in its own process group, its output logged,
stopped with SIGTERM and then SIGKILL, and never leaked.

Each running process has a pid file (pid and the kernel's start time of that pid), so a
server that was killed and restarted finds the processes it left behind and stops them
before starting the service again, instead of running it twice; the start time makes
sure a recycled pid is never mistaken for one of ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from micro.runtime.base import LogRecord
from micro.runtime.sandbox import Place, Sandbox

__all__ = ["Instance", "Launch", "alive", "describe_exit", "kill_leftovers"]

log = logging.getLogger("micro.runtime")

_LAST_LINES = 10
"""Lines of output kept in memory per process, for the reason of an error."""


@dataclass(frozen=True)
class Launch:
    """What to run: ``argv`` with ``env``, a process of ``namespace`` working in ``place``
    (paths in ``argv`` and ``env`` as the process sees them), started by ``sandbox``."""

    argv: list[str]
    env: dict[str, str]
    place: Place
    namespace: str
    sandbox: Sandbox


def describe_exit(code: int) -> str:
    """``exited with code 1`` or ``was killed by SIGKILL``."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), or ``None`` when there is no such
    process (or no ``/proc`` to ask)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from its end
    return stat.rsplit(")", 1)[1].split()[19]


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Instance:
    """A started process; :meth:`wait` for it to end, :meth:`stop` to end it."""

    def __init__(
        self,
        label: str,
        pidfile: Path,
        sink: Callable[[LogRecord], None],
    ) -> None:
        self.label = label
        self.pidfile = pidfile
        self.last_lines: deque[str] = deque(maxlen=_LAST_LINES)
        self._sink = sink
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The process id (after :meth:`start`)."""
        return self._proc.pid if self._proc is not None else None

    async def start(self, launch: Launch) -> None:
        """Start the process in a new session (its own process group); OSError or
        SandboxError when it cannot be started."""
        self._proc = await launch.sandbox.spawn(
            launch.namespace, launch.place, launch.argv, launch.env
        )
        pid = self._proc.pid
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.pidfile.write_text(json.dumps({"pid": pid, "start": _start_time(pid)}))
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            try:
                raw = await stdout.readline()
            except ValueError:  # a line longer than the limit: take what there is
                raw = await stdout.read(1024 * 1024)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.last_lines.append(line)
            self._sink(LogRecord(time.time(), line, {"instance": self.label}))

    async def wait(self) -> int:
        """Wait for the process to end; its exit code (negative: killed by that signal).
        Whatever it left running in its process group is killed too."""
        assert self._proc is not None
        code = await self._proc.wait()
        _signal_group(self._proc.pid, signal.SIGKILL)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        return code

    async def stop(self, grace: float) -> None:
        """SIGTERM the process group; SIGKILL it if still there after ``grace`` seconds."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
        except TimeoutError:
            log.warning("%s did not stop within %.0fs: killed", self.label, grace)
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()


def kill_leftovers(folder: Path, grace: float = 5.0) -> int:
    """Stop the processes a previous server left behind, named by the pid files under
    ``folder`` (SIGTERM, then SIGKILL); returns how many there were."""
    found = 0
    groups: list[int] = []
    for pidfile in folder.rglob("*.pid"):
        try:
            info = json.loads(pidfile.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            pid = 0
        ours = pid and info.get("start") and _start_time(pid) == info["start"]
        if ours and _signal_group(pid, signal.SIGTERM):
            groups.append(pid)
            found += 1
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
    deadline = time.monotonic() + grace
    while groups and time.monotonic() < deadline:
        groups = [g for g in groups if alive(g)]
        if groups:
            time.sleep(0.05)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    return found


def alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (which may not be ours to reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
