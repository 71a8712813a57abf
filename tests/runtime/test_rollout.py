"""Safe deploys (issue 15): a rolling update under load through the gateway fails no
call, new code that crashes at start leaves the old version serving, scaling restarts
nothing, a server restart during an update ends with one version, and a restarting
service is waited for rather than "not found". One server for the module (and one more
for the restart)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support import http, ok
from tests.runtime.test_run_cli import call, eventually, pid_of, refused, status_of, write_probe

from micro import errors
from micro.runtime.process import alive
from micro.runtime.restarting import Restarting
from micro.testing import MicroServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicroServerProcess]:
    started = start_server(tmp_path_factory.mktemp("rollout-home"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def probe(server: MicroServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe, running two instances of version "one"."""
    folder = write_probe(tmp_path_factory.mktemp("rollout") / "probe")
    ok(server.micro("run", str(folder), "--instances", "2", timeout=120))
    return folder


def version_of(server: MicroServerProcess) -> str:
    return str(call(server, "probe", "Probe.Version", '{"key":""}')["text"])


def nodes(server: MicroServerProcess, name: str = "probe") -> int:
    done = server.micro("get", "service", name)
    if done.returncode == 4:  # not found: no node at all
        return 0
    listed = ok(done)
    return sum(1 for line in listed.splitlines() if line.startswith(f"{name}-"))


class Load:
    """Calls through the gateway, one after another, until stopped (at most ``limit``)."""

    def __init__(self, server: MicroServerProcess, limit: int = 20_000) -> None:
        self.url = f"{server.api}/probe/probe/version"
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._limit = limit
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.answers) < self._limit:
            status, _, body = http(
                "POST", self.url, '{"key":""}', {"content-type": "application/json"}
            )
            text = json.loads(body).get("text", "") if status == 200 else body.decode()
            self.answers.append((status, text))
            self._stop.wait(0.01)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_rolling_update_under_load_fails_no_call(server: MicroServerProcess, probe: Path) -> None:
    with Load(server) as load:
        eventually(lambda: len(load.answers) > 5, "calls before the update")
        write_probe(probe, version="two")
        out = ok(server.micro("update", str(probe), timeout=120))
        assert "probe: updating" in out  # progress lines when stdout is no terminal
        seen = len(load.answers)
        eventually(lambda: len(load.answers) > seen + 5, "calls after the update")
    failures = [a for a in load.answers if a[0] != 200]
    assert failures == []
    texts = [text for _, text in load.answers]
    assert texts[0] == "one"
    assert texts[-1] == "two"
    assert set(texts) == {"one", "two"}
    assert status_of(server, "probe")["instances"] == 2
    eventually(lambda: nodes(server) == 2, "the old nodes gone")


def test_new_code_that_crashes_leaves_the_old_serving(
    server: MicroServerProcess, probe: Path
) -> None:
    before = version_of(server)
    main = probe / "main.py"
    good = main.read_text()
    main.write_text('import sys\nprint("boom at start", flush=True)\nsys.exit(3)\n')
    try:
        out = refused(server.micro("update", str(probe), timeout=120))
    finally:
        main.write_text(good)
    assert "Update of probe failed, the previous version still serves" in out
    assert "exited with code 3 before it was running" in out
    assert version_of(server) == before
    row = status_of(server, "probe")
    assert row["status"] == "running"
    assert "exited with code 3" in row["metadata"]["update_error"]  # type: ignore[index]
    assert nodes(server) == 2


def test_instances_scale_without_a_restart(server: MicroServerProcess, probe: Path) -> None:
    first = pid_of(server, "probe", 0)
    ok(server.micro("update", "probe", "--instances", "3"))
    eventually(lambda: nodes(server) == 3, "a third node")
    ok(server.micro("update", "probe", "--instances", "1"))
    eventually(lambda: nodes(server) == 1, "one node left")
    assert pid_of(server, "probe", 0) == first
    assert status_of(server, "probe").get("instances", 1) == 1
    out = refused(server.micro("update", "nothing", "--instances", "2"), 4)
    assert 'Service "nothing" not found' in out


def test_a_restarting_service_is_waited_for_not_404(
    server: MicroServerProcess, probe: Path
) -> None:
    ok(server.micro("update", "probe", "--instances", "1"))
    eventually(lambda: nodes(server) == 1, "one node")
    os.kill(pid_of(server, "probe", 0), signal.SIGKILL)
    eventually(lambda: nodes(server) == 0, "the killed node deregistered", timeout=10)
    status, _, body = http(
        "POST",
        f"{server.api}/probe/probe/version",
        '{"key":""}',
        {"content-type": "application/json"},
    )
    assert status == 200, body  # waited for the restart (1s backoff), not 404
    status, _, body = http(
        "POST", f"{server.api}/unknown/probe/version", "{}", {"content-type": "application/json"}
    )
    assert status == 404, body  # a service the runtime does not run is still unknown


async def test_a_restart_past_the_deadline_is_503() -> None:
    async def nothing() -> str:
        raise errors.NotFound("x", "service probe not found")

    restarting = Restarting(lambda ns, name: {"probe": "restarting", "bad": "error"}.get(name, ""))
    assert restarting.expects("micro", "probe")
    assert not restarting.expects("micro", "other")  # not the runtime's: the caller's 404
    with pytest.raises(errors.ServiceUnavailable, match="service probe restarting"):
        await restarting.wait("probe", "micro", 300, nothing)
    with pytest.raises(errors.ServiceUnavailable, match="service bad is not running"):
        restarting.expects("micro", "bad")


def test_a_server_restart_during_an_update_ends_with_one_version(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    try:
        folder = write_probe(tmp_path / "probe")
        ok(server.micro("run", str(folder), timeout=120))
        main = folder / "main.py"
        main.write_text("import time\ntime.sleep(60)\n" + main.read_text())
        update = subprocess.Popen(
            [*server.command, "update", str(folder)],
            env=server.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            eventually(
                lambda: "updating" in status_of(server, "probe")["metadata"],  # type: ignore[operator]
                "the update under way",
                timeout=60,
            )
            pids = server.home / "server" / "runtime" / "pids" / "micro" / "probe" / "latest"
            eventually(lambda: any(pids.glob("0-*.pid")), "the new instance started")
            [fresh] = pids.glob("0-*.pid")
            new_pid = int(json.loads(fresh.read_text())["pid"])
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
        finally:
            update.kill()
            update.wait()
        server = start_server(home)
        assert not alive(new_pid)
        eventually(lambda: status_of(server, "probe")["status"] == "running", "probe running")
        assert "updating" not in status_of(server, "probe")["metadata"]  # type: ignore[operator]
        assert version_of(server) == "one"
        assert nodes(server) == 1
    finally:
        server.stop()
