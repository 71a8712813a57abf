"""Testing services against a real platform: a pytest plugin, loaded automatically.

Fixtures:

``micro_server``
    A real ``micro server`` process in a temporary ``MICRO_HOME``, on free ports.
    Its :meth:`MicroServerProcess.env` is what a subprocess (the ``micro`` CLI, a service)
    needs to talk to it.

``micro_env``
    Points this test process at that server (``MICRO_HOME``, ``MICRO_PROXY``), so
    ``micro.client`` and in-process services use it.

``micro_session_server``
    One ``micro server`` for the whole test session: a suite of a hundred tests boots
    one server, not a hundred.

``micro_namespace``
    A fresh namespace on the session's server for one test, and an admin of it (a user
    account: service accounts are never admins): a :class:`MicroNamespace`, whose
    ``env()`` and ``micro(...)`` act in it as that admin.

``micro_namespace_env``
    Points this test process at that namespace as its admin, as ``micro_env`` does for a
    server of its own: ``micro.client``, ``micro.store``, ``micro.config`` ... and
    in-process services all work there, and nowhere else.

And helpers: :func:`create_namespace` makes a namespace and its admin on any running
server (for a fixture of another scope); for async tests, :func:`serving` runs a
:class:`micro.Service` in-process for the duration of an ``async with``;
:meth:`MicroServerProcess.start_service` runs a service's ``main.py`` as its own process
and waits until it is registered.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from micro._test_namespace import MicroNamespace, create_namespace

__all__ = [
    "MicroNamespace",
    "MicroServerProcess",
    "create_namespace",
    "micro_env",
    "micro_namespace",
    "micro_namespace_env",
    "micro_server",
    "micro_session_server",
    "serving",
    "start_server",
    "wait_for_service",
]

_READY = "micro server ready: proxy "


def _lines(stream: IO[str], out: queue.Queue[str | None]) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


@dataclass
class MicroServerProcess:
    """A running ``micro server`` and what its clients need to reach it."""

    home: Path
    proxy: str
    process: subprocess.Popen[str]
    base_env: dict[str, str]
    services: list[subprocess.Popen[str]] = field(default_factory=list)
    edges: dict[str, str] = field(default_factory=dict)
    """Where the server's edges listen: ``api`` (HTTP gateway), ``grpc``."""
    command: tuple[str, ...] = (sys.executable, "-m", "micro")
    """How the ``micro`` command is run (an installed one's path, say)."""

    @property
    def api(self) -> str:
        """The HTTP gateway's base URL, ``http://host:port``."""
        return f"http://{self.edges['api']}"

    @property
    def web(self) -> str:
        """The dashboard's base URL, ``http://host:port``."""
        return f"http://{self.edges['web']}"

    @property
    def admin_password(self) -> str:
        """The password of the ``admin`` account of this server."""
        return self.base_env["MICRO_ADMIN_PASSWORD"]

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a subprocess that talks to this server."""
        env = dict(self.base_env)
        env["MICRO_PROXY"] = self.proxy
        env.update(extra)
        return env

    def micro(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``micro`` command against this server."""
        return subprocess.run(
            [*self.command, *args],
            env=env or self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_service(
        self,
        main: str | Path,
        *,
        name: str,
        timeout: float = 15.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """Run ``python <main>`` against this server; return once it has registered
        (it logs ``Registered [service] <name>``)."""
        proc = subprocess.Popen(
            [sys.executable, str(main)],
            env=env or self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.services.append(proc)
        assert proc.stderr is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True).start()
        _wait_line(lines, f"Registered [service] {name} ", timeout, f"service {name}", proc)
        return proc

    def stop(self) -> None:
        """Stop every service started here, then the server (SIGTERM, then SIGKILL)."""
        for proc in [*self.services, self.process]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in [*self.services, self.process]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _admin_password(home: Path) -> str:
    """A random admin password per ``MICRO_HOME``, kept there: a server restarted on the
    same home has the same admin."""
    path = home / "test-admin-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


def start_server(
    home: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
    login: bool = True,
    command: Sequence[str] = (sys.executable, "-m", "micro"),
) -> MicroServerProcess:
    """Start ``micro server`` with ``MICRO_HOME=home`` on free ports; wait until it is ready.
    ``command`` runs ``micro`` (this interpreter's, unless an installed one is tested).

    The first admin gets a random password (``MICRO_ADMIN_PASSWORD`` in :meth:`env`) and,
    with ``login``, the CLI of that ``MICRO_HOME`` is logged in as ``admin``: commands,
    and services started by hand, act as a developer who ran ``micro login``.
    """
    home.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    base.update(
        MICRO_HOME=str(home),
        MICRO_PROXY_ADDRESS="127.0.0.1:0",
        MICRO_API_ADDRESS="127.0.0.1:0",
        MICRO_WEB_ADDRESS="127.0.0.1:0",
        MICRO_GRPC_ADDRESS="127.0.0.1:0",
        MICRO_REGISTER_TTL="3",
        MICRO_REGISTER_INTERVAL="0.5",
        MICRO_ADMIN_PASSWORD=_admin_password(home),
    )
    base.update(env or {})
    proc = subprocess.Popen(
        [*command, "server"],
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    line = _wait_line(lines, _READY, timeout, "micro server", proc)
    # "micro server ready: proxy <address> [<edge> <address> ...]"
    words = line[line.index(_READY) + len(_READY) :].split()
    proxy = words[0]
    edges = dict(zip(words[1::2], words[2::2], strict=False))
    server = MicroServerProcess(
        home=home, proxy=proxy, process=proc, base_env=base, edges=edges, command=tuple(command)
    )
    if login:
        done = server.micro("login", "--username", "admin", "--password", server.admin_password)
        if done.returncode != 0:
            server.stop()
            raise RuntimeError(f"cannot log in to the test server: {done.stderr.strip()}")
    return server


def _wait_line(
    lines: queue.Queue[str | None],
    marker: str,
    timeout: float,
    what: str,
    proc: subprocess.Popen[str],
) -> str:
    """The first line containing ``marker``; raises when the process ends or time runs out.
    The reader thread keeps draining later lines, so the process never blocks on a pipe."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            raise TimeoutError(f"{what} not ready in {timeout}s: {''.join(seen)}") from None
        if line is None:
            proc.wait()
            raise RuntimeError(f"{what} exited with {proc.returncode}: {''.join(seen)}")
        seen.append(line)
        if marker in line:
            return line


async def wait_for_service(
    name: str, *, nodes: int = 1, timeout: float = 10.0, domain: str = "micro"
) -> None:
    """Wait (watching the registry) until ``name`` has at least ``nodes`` nodes."""
    import asyncio

    import micro.client
    from micro import errors
    from micro.registry.client import RPCRegistry

    registry = RPCRegistry(micro.client.default())

    async def count() -> int:
        try:
            found = await registry.get_service(name, domain=domain)
        except errors.NotFound:
            return 0
        return sum(len(s.nodes) for s in found)

    async with asyncio.timeout(timeout):
        async with registry.watch(service=name, domain=domain) as watcher:
            while await count() < nodes:
                await watcher.next()


@contextlib.asynccontextmanager
async def serving(service: Any) -> AsyncIterator[Any]:
    """Run ``service`` (a :class:`micro.Service`) in this event loop for the block."""
    await service.start()
    try:
        yield service
    finally:
        await service.stop(grace=2.0)


@pytest.fixture
def micro_server(tmp_path: Path) -> Iterator[MicroServerProcess]:
    """A real ``micro server`` in a temporary ``MICRO_HOME``, stopped after the test."""
    server = start_server(tmp_path / "micro-home")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def micro_env(
    micro_server: MicroServerProcess, monkeypatch: pytest.MonkeyPatch
) -> MicroServerProcess:
    """Point this process's ``micro.client`` and services at ``micro_server``."""
    for key, value in micro_server.env().items():
        if key.startswith("MICRO_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("MICRO_SERVICE_ADDRESS", "127.0.0.1:0")
    return micro_server


@pytest.fixture(scope="session")
def micro_session_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MicroServerProcess]:
    """One real ``micro server`` for the whole session (tests share it through
    :func:`micro_namespace`, each in a namespace of its own)."""
    server = start_server(tmp_path_factory.mktemp("micro-session-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def micro_namespace(micro_session_server: MicroServerProcess, tmp_path: Path) -> MicroNamespace:
    """A fresh namespace of the session's server, with an admin, for this test."""
    return create_namespace(micro_session_server, tmp_path / "micro-namespace-home")


@pytest.fixture
def micro_namespace_env(
    micro_namespace: MicroNamespace, monkeypatch: pytest.MonkeyPatch
) -> MicroNamespace:
    """Point this process's ``micro.client`` and services at ``micro_namespace``, as its admin."""
    for key in [k for k in os.environ if k.startswith("MICRO_")]:
        monkeypatch.delenv(key)
    for key, value in micro_namespace.env().items():
        if key.startswith("MICRO_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("MICRO_SERVICE_ADDRESS", "127.0.0.1:0")
    return micro_namespace
