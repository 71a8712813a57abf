"""Backends the tests start for themselves: etcd, PostgreSQL and NATS (JetStream), each on
free loopback ports in a temporary folder of its own.

Why our own instances: fault tests stop and restart their backend, which they must never
do to the shared PostgreSQL and NATS other tests use at the same time. Each instance keeps
its ports and its data across :meth:`Backend.stop` and :meth:`Backend.start`, so a client
that was connected before the outage finds the same server, with the same data, after it.

Use one in a fixture with :func:`running`, and take it down for a block with
:meth:`Backend.down`; a missing binary skips the test (fails it under
``MICRO_REQUIRE_BACKENDS=1``) through :func:`tests._support.backend_missing`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, TypeVar

import pytest
from tests._support import backend_missing, free_port, http

__all__ = ["Backend", "Etcd", "Nats", "Postgres", "etcd_binary", "running"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
_INSTALL_TIMEOUT = 600

# Instances still running, stopped at exit should a test run end without its fixtures'
# teardown (an interrupt): a leftover server would hold its ports and folder.
_live: set[Backend] = set()


@atexit.register
def _stop_leftovers() -> None:
    for backend in list(_live):
        with contextlib.suppress(Exception):
            backend.close()


class Backend:
    """A server process of ours, restartable on the same port(s) and data folder.

    Subclasses say how to run it (:meth:`_command`), when it is ready (:meth:`_ready`)
    and which signal stops it cleanly or like a crash.
    """

    name: ClassVar[str] = "backend"
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    kill_signal: ClassVar[signal.Signals] = signal.SIGKILL
    user: str | None = None
    """The OS user the process runs as (``None``: ours)."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its folders are private to us (0700), and
        # PostgreSQL runs as another user who must reach its data folder.
        self.root = Path(tempfile.mkdtemp(prefix=f"micro-{self.name}-"))
        self.root.chmod(0o755)
        self.log = self.root / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients reach it; the same across restarts."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether its process is alive (not whether it is ready)."""
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        """One quick, bounded probe: does it serve clients now?"""
        raise NotImplementedError

    def start(self) -> None:
        """Start it and wait until it serves; fail the test with its log's tail if it does
        not within ``_START_TIMEOUT`` (the process is stopped again then)."""
        if self.running:
            return
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,  # a Ctrl-C of pytest is not also ours
            )
        _live.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(kill=True)
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                break
            if self._ready():
                return
            time.sleep(0.1)
        pytest.fail(
            f"{self.name} at {self.url} did not become ready ({self._state()}):\n{self.tail()}",
            pytrace=False,
        )

    def _state(self) -> str:
        if self._process is None:
            return "not started"
        code = self._process.poll()
        return "still starting" if code is None else f"exited with {code}"

    def tail(self, size: int = 2000) -> str:
        """The end of its log, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self, *, kill: bool = False) -> None:
        """Stop it: cleanly (``kill=False``) or abruptly, as a crash would; always waits
        until the process is gone, so the port is free for :meth:`start`."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self.kill_signal if kill else self.stop_signal)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # Stuck: SIGKILL its whole group (its own session), so no child of it (a
                # PostgreSQL backend) lives on holding shared memory or a port.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=_STOP_TIMEOUT)
        self._process = None
        _live.discard(self)

    @contextlib.contextmanager
    def down(self, *, kill: bool = False) -> Iterator[None]:
        """Stopped for the block, started again after it, even when the block fails (so a
        module-scoped instance stays usable for the next test)."""
        self.stop(kill=kill)
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        """Stop it and remove its folder."""
        self.stop()
        _live.discard(self)
        shutil.rmtree(self.root, ignore_errors=True)


B = TypeVar("B", bound=Backend)


@contextlib.contextmanager
def running(backend: B) -> Iterator[B]:
    """``backend`` started for the block, then stopped and its folder removed: for
    fixtures, ``with running(Nats.create()) as nats: yield nats``."""
    try:
        backend.start()
        yield backend
    finally:
        backend.close()


# --------------------------------------------------------------------------- etcd


def _apt_install(package: str) -> str:
    """Install a Debian package (as root, with apt-get); why not, or ``""``."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", package]
    done: subprocess.CompletedProcess[str] | None = None
    for command in (install, ["apt-get", "update", "-q"], install):
        try:
            done = subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(command)} took over {_INSTALL_TIMEOUT} s"
        if done.returncode == 0 and command is install:
            return ""
    assert done is not None
    return f"apt-get install {package} failed: {done.stderr.strip()[-300:]}"


def etcd_binary() -> str:
    """The etcd binary, installed first where we may (root with apt-get: Debian's
    etcd-server); else skip (fail in CI) with why."""
    found = shutil.which("etcd")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        backend_missing("etcd is not installed (Debian: apt-get install etcd-server)")
    reason = _apt_install("etcd-server")
    found = shutil.which("etcd")
    if not found:
        backend_missing(f"etcd is not installed and could not be: {reason or 'no etcd after'}")
    return found


class Etcd(Backend):
    """A one-member etcd on loopback; fast timings so 1 s leases and quick elections work."""

    name = "etcd"

    def __init__(self, binary: str) -> None:
        super().__init__()
        self.binary = binary
        self.data_dir = self.root / "data"
        self.client_port, self.peer_port = free_port(), free_port()

    @classmethod
    def create(cls) -> Etcd:
        """One with the installed etcd (see :func:`etcd_binary`)."""
        return cls(etcd_binary())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def _command(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            self.binary,
            "--name=default",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--heartbeat-interval=10",
            "--election-timeout=100",
        ]

    def _ready(self) -> bool:
        try:
            status, _, body = http("GET", f"{self.url}/health", timeout=2)
        except OSError:
            return False
        return status == 200 and b'"true"' in body


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (``initdb``, ``postgres``,
    ``pg_isready``), found from ``pg_ctl`` on PATH or Debian's layout."""
    candidates = []
    if pg_ctl := shutil.which("pg_ctl"):
        candidates.append(Path(pg_ctl).resolve().parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    tools = ("initdb", "createdb", "postgres", "pg_isready")
    found = next((d for d in candidates if all((d / t).is_file() for t in tools)), None)
    if found is None:
        backend_missing(
            "PostgreSQL's server programs (initdb, postgres) are not installed "
            "(Debian: apt-get install postgresql)"
        )
    return found


class Postgres(Backend):
    """A PostgreSQL cluster of its own: ``initdb`` on first start, trust auth for user
    ``postgres``, no fsync (a test's data need survive a crash of the server, not of
    the machine).

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` OS user,
    which then owns its folder.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: ends sessions, checkpoints, exits
    kill_signal = signal.SIGQUIT  # "immediate": no checkpoint, crash recovery on start

    def __init__(self, bindir: Path, database: str = "micro") -> None:
        account = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                backend_missing("PostgreSQL cannot run as root and there is no postgres user")
            self.user = "postgres"
        super().__init__()
        self.bindir = bindir
        self.database = database
        self.port = free_port()
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "run"
        self.socket_dir.mkdir()
        if account is not None:  # its folder, its socket folder and its log are its own
            self.log.touch()
            for path in (self.root, self.socket_dir, self.log):
                os.chown(path, account.pw_uid, account.pw_gid)

    @classmethod
    def create(cls, database: str = "micro") -> Postgres:
        """One with the installed PostgreSQL (skips, or fails in CI, without one)."""
        return cls(_postgres_bin(), database)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        """One of PostgreSQL's programs, as the server's user; fails with its output."""
        done = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            user=self.user,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT * 2,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}", pytrace=False)

    def start(self) -> None:
        first = not self.data_dir.exists()
        if first:
            self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres")
        super().start()
        if first and self.database != "postgres":
            self._run(
                "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                self.database,
            )  # fmt: skip

    def _command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", "listen_addresses=127.0.0.1",
            # A crashed server keeps what it handed the OS; only a power cut would lose
            # it. Commits stay synchronous: an acknowledged write must survive a crash.
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=50",
        ]  # fmt: skip

    def _ready(self) -> bool:
        done = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0


# --------------------------------------------------------------------------- NATS


class Nats(Backend):
    """A NATS server with JetStream, its store kept across restarts (streams and
    consumers survive, as on a real deployment), and a monitoring port whose
    ``/healthz`` says when JetStream is ready too."""

    name = "nats"

    def __init__(self, binary: str) -> None:
        super().__init__()
        self.binary = binary
        self.port, self.monitor_port = free_port(), free_port()
        self.store_dir = self.root / "jetstream"

    @classmethod
    def create(cls) -> Nats:
        """One with the installed nats-server (skips, or fails in CI, without one)."""
        found = shutil.which("nats-server") or next(
            (
                p
                for p in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server")
                if Path(p).is_file()
            ),
            None,
        )
        if found is None:
            backend_missing("nats-server is not installed (Debian: apt-get install nats-server)")
        return cls(found)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return [
            self.binary,
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-js",
            "-sd", str(self.store_dir),
        ]  # fmt: skip

    def _ready(self) -> bool:
        try:
            status, _, _ = http("GET", f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=2)
        except OSError:
            return False
        return status == 200
