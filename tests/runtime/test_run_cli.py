"""``micro run/status/logs/update/kill`` against a real server: services from folders and
git, their processes, restarts, and every bad input the issue names."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests._support import HELLOWORLD, failed, git, ok

from micro.runtime.process import alive
from micro.testing import MicroServerProcess, start_server

PROBE = textwrap.dedent(
    """
    import os

    import msgspec

    import micro

    VERSION = "one"


    class Key(msgspec.Struct):
        key: str


    class Text(msgspec.Struct):
        text: str


    class Probe:
        async def env(self, req: Key) -> Text:
            return Text(os.environ.get(req.key, ""))

        async def say(self, req: Text) -> Text:
            print(req.text, flush=True)
            return req

        async def version(self, req: Key) -> Text:
            return Text(VERSION)

        async def remember(self, req: Text) -> Text:
            await micro.store.write("said", req.text.encode())
            [record] = await micro.store.read("said")
            return Text(record.value.decode())


    service = micro.Service("probe")
    service.handle(Probe())
    service.run()
    """
)


def write_probe(folder: Path, version: str = "one") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(PROBE.replace('VERSION = "one"', f'VERSION = "{version}"'))
    return folder


def refused(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The stderr of a command that must fail with ``code``: the reason may take several
    lines (a failed service's last lines), but never a traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds (bounded: fails with ``what`` after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def status_of(server: MicroServerProcess, name: str) -> dict[str, object]:
    out = ok(server.micro("status", name, "--output", "json"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 1, out
    row: dict[str, object] = rows[0]
    return row


def pid_of(server: MicroServerProcess, name: str, slot: int = 0, version: str = "latest") -> int:
    """The pid of a slot's process (a rolling update's new run names its pid file
    ``<slot>-<generation>.pid``): the newest one's."""
    folder = server.home / "server" / "runtime" / "pids" / "micro" / name / version
    found = [*folder.glob(f"{slot}.pid"), *folder.glob(f"{slot}-*.pid")]
    pidfile = max(found, key=lambda p: p.stat().st_mtime)
    return int(json.loads(pidfile.read_text())["pid"])


def call(server: MicroServerProcess, *args: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(ok(server.micro("call", *args)))
    return result


def test_run_status_call_logs_kill(micro_server: MicroServerProcess) -> None:
    ok(micro_server.micro("run", str(HELLOWORLD.parent)))
    table = ok(micro_server.micro("status"))
    assert table.splitlines()[0].split() == [
        "NAME", "VERSION", "SOURCE", "STATUS", "BUILD", "UPDATED", "METADATA"
    ]  # fmt: skip
    assert re.search(r"helloworld\s+latest\s+\S+\s+running\s+\w{7}\s+\S+ ago\s+owner=admin", table)
    assert call(micro_server, "helloworld", "Helloworld.Call", '{"name":"x"}') == {"msg": "Hello x"}
    logs = ok(micro_server.micro("logs", "helloworld"))
    assert "Registered [service] helloworld" in logs
    as_json = [
        json.loads(line)
        for line in ok(
            micro_server.micro("logs", "helloworld", "-o", "json", "-n", "2")
        ).splitlines()
    ]
    assert len(as_json) == 2
    assert {"timestamp", "message", "metadata"} <= set(as_json[-1])
    pid = pid_of(micro_server, "helloworld")
    ok(micro_server.micro("kill", "helloworld"))
    assert ok(micro_server.micro("status")) == ""
    assert not alive(pid)
    assert "helloworld" not in ok(micro_server.micro("services")).split()
    assert "Service not found" in failed(micro_server.micro("logs", "helloworld"), 4)
    assert 'Service "helloworld" not found' in failed(micro_server.micro("kill", "helloworld"), 4)


def test_service_gets_platform_variables_env_vars_and_its_own_account(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    folder = write_probe(tmp_path / "probe")
    ok(micro_server.micro("run", str(folder), "--env_vars", "GREETING=hi,COLOR=blue"))
    env = {
        key: call(micro_server, "probe", "Probe.Env", json.dumps({"key": key}))["text"]
        for key in (
            "GREETING",
            "COLOR",
            "MICRO_SERVICE_NAME",
            "MICRO_SERVICE_VERSION",
            "MICRO_NAMESPACE",
            "MICRO_AUTH_ID",
            "MICRO_PROXY",
            "MICRO_ADMIN_PASSWORD",
        )
    }
    assert env == {
        "GREETING": "hi",
        "COLOR": "blue",
        "MICRO_SERVICE_NAME": "probe",
        "MICRO_SERVICE_VERSION": "latest",
        "MICRO_NAMESPACE": "micro",
        "MICRO_AUTH_ID": "probe-latest",
        "MICRO_PROXY": micro_server.proxy,
        "MICRO_ADMIN_PASSWORD": "",  # the server's secrets stay the server's
    }
    # it reaches the platform as its own service account
    assert call(micro_server, "probe", "Probe.Remember", '{"text":"kept"}') == {"text": "kept"}
    accounts = ok(micro_server.micro("auth", "list", "accounts"))
    assert re.search(r"probe-latest\s+probe-latest\s+service", accounts)
    ok(micro_server.micro("kill", "probe"))
    assert "probe-latest" not in ok(micro_server.micro("auth", "list", "accounts"))


def test_bad_sources_fail_with_a_clear_message(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    assert f"Folder {missing} does not exist" in failed(micro_server.micro("run", str(missing)), 1)
    not_repo = f"file://{tmp_path}/none.git"
    out = failed(micro_server.micro("run", not_repo), 1)
    assert f"Service none failed: cannot clone {not_repo}" in out
    assert ok(micro_server.micro("status", "none")) == ""  # no orphan row: it never ran
    empty = tmp_path / "empty"
    empty.mkdir()
    out = failed(micro_server.micro("run", str(empty)), 1)
    assert "Service empty failed: no entrypoint: expected main.py" in out


def test_a_service_that_exits_at_once_is_an_error_not_a_crash_loop(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "crash"
    folder.mkdir()
    (folder / "main.py").write_text('import sys\nprint("boom: no config")\nsys.exit(3)\n')
    out = refused(micro_server.micro("run", str(folder)), 1)
    assert "Service crash failed: instance 0 exited with code 3 before it was running" in out
    assert out.splitlines().count("boom: no config") == 1  # one start, no restarts
    # a name that never ran leaves no row in error behind
    assert ok(micro_server.micro("status", "crash")) == ""
    # once fixed, running it again needs no --force
    write_probe(folder)
    ok(micro_server.micro("run", str(folder)))
    assert status_of(micro_server, "crash")["status"] == "running"


def test_a_dependency_that_fails_to_install_is_the_error(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    folder = write_probe(tmp_path / "baddep")
    (folder / "requirements.txt").write_text("broken @ file:///nonexistent/broken-1.0.tar.gz\n")
    out = refused(micro_server.micro("run", str(folder)), 1)
    assert "Service baddep failed:" in out
    assert "nonexistent/broken-1.0.tar.gz" in out
    assert ok(micro_server.micro("status", "baddep")) == ""


def test_second_run_is_refused_and_force_replaces(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    folder = write_probe(tmp_path / "probe")
    ok(micro_server.micro("run", str(folder)))
    first = pid_of(micro_server, "probe")
    out = failed(micro_server.micro("run", str(folder)), 1)
    assert "Service probe (latest) is already running: use --force to replace it" in out
    assert pid_of(micro_server, "probe") == first
    write_probe(folder, version="two")
    ok(micro_server.micro("run", str(folder), "--force"))
    assert pid_of(micro_server, "probe") != first
    assert not alive(first)
    assert call(micro_server, "probe", "Probe.Version", '{"key":""}') == {"text": "two"}


def test_update_rebuilds_and_restarts(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    folder = write_probe(tmp_path / "probe")
    assert 'Service "probe" not found' in failed(micro_server.micro("update", str(folder)), 4)
    ok(micro_server.micro("run", str(folder)))
    write_probe(folder, version="two")
    ok(micro_server.micro("update", str(folder), "--instances", "2"))
    assert call(micro_server, "probe", "Probe.Version", '{"key":""}') == {"text": "two"}
    assert "instances=2" in ok(micro_server.micro("status"))
    nodes = ok(micro_server.micro("get", "service", "probe"))
    assert len(re.findall(r"^probe-", nodes, re.MULTILINE)) == 2


def test_instances_each_register_and_log(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    folder = write_probe(tmp_path / "probe")
    ok(micro_server.micro("run", str(folder), "--instances", "3"))
    pids = {pid_of(micro_server, "probe", slot) for slot in range(3)}
    assert len(pids) == 3
    logs = [
        json.loads(line)
        for line in ok(micro_server.micro("logs", "probe", "-n", "100", "-o", "json")).splitlines()
    ]
    assert {r["metadata"]["instance"] for r in logs} >= {"0", "1", "2", "build"}


def test_sigkill_of_an_instance_restarts_it(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    folder = write_probe(tmp_path / "probe")
    ok(micro_server.micro("run", str(folder)))
    first = pid_of(micro_server, "probe")
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        try:
            again = pid_of(micro_server, "probe")
        except (FileNotFoundError, ValueError):
            return False
        return again != first and status_of(micro_server, "probe")["status"] == "running"

    eventually(restarted, "the killed instance to be running again")
    assert call(micro_server, "probe", "Probe.Version", '{"key":""}') == {"text": "one"}
    assert "was killed by SIGKILL; restarting in 1s" in ok(
        micro_server.micro("logs", "probe", "-n", "50")
    )


def test_sigkill_of_the_server_brings_services_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    try:
        ok(server.micro("run", str(write_probe(tmp_path / "probe"))))
        old = pid_of(server, "probe")
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        assert alive(old)  # orphaned for now
        server = start_server(home)  # a new port: log in to it
        assert not alive(old)  # the new server stopped what the old one left behind
        eventually(lambda: status_of(server, "probe")["status"] == "running", "probe running")
        assert call(server, "probe", "Probe.Version", '{"key":""}') == {"text": "one"}
    finally:
        server.stop()


def test_an_orphaned_service_stops_by_itself(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        ok(server.micro("run", str(write_probe(tmp_path / "probe"))))
        pid = pid_of(server, "probe")
    finally:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    eventually(lambda: not alive(pid), "the orphaned service to stop", timeout=15)


def test_logs_follow_prints_new_lines(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    ok(micro_server.micro("run", str(write_probe(tmp_path / "probe"))))
    follow = subprocess.Popen(
        [sys.executable, "-m", "micro", "logs", "probe", "-f", "-n", "0"],
        env=micro_server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        time.sleep(1.0)  # let the follower subscribe (no line is missed after that)
        call(micro_server, "probe", "Probe.Say", '{"text":"a new line"}')
        assert follow.stdout.readline().strip() == "a new line"
        ok(micro_server.micro("kill", "probe"))
        assert follow.wait(timeout=15) == 0  # the stream ends with the service
    finally:
        follow.kill()
        follow.wait()


def bare_repo(tmp_path: Path) -> Path:
    """A bare repository of the probe: v1 says "one", the default branch "two"."""
    work = write_probe(tmp_path / "work")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "one")
    git(work, "tag", "v1")
    write_probe(work, version="two")
    git(work, "commit", "-q", "-am", "two")
    bare = tmp_path / "probe.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def test_run_from_git_at_a_ref(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    bare = bare_repo(tmp_path)
    ok(micro_server.micro("run", f"file://{bare}@v1"))
    ok(micro_server.micro("run", f"file://{bare}"))
    table = ok(micro_server.micro("status"))
    assert re.search(r"probe\s+latest\s+file://\S+\s+running", table)
    assert re.search(r"probe\s+v1\s+file://\S+@v1\s+running", table)
    versions = ok(micro_server.micro("get", "service", "probe"))
    assert "version v1" in versions
    assert "version latest" in versions
    out = failed(micro_server.micro("run", f"file://{bare}@nope"), 1)
    assert f"ref 'nope' not found in file://{bare}" in out
    ok(micro_server.micro("kill", "probe@v1"))
    assert re.search(r"probe\s+latest", ok(micro_server.micro("status")))
    assert "v1" not in ok(micro_server.micro("status"))


def micro_in(server: MicroServerProcess, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "micro", *args],
        cwd=cwd,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_new_run_status_call_logs_kill(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    """The issue's "done when", as a new user types it."""
    ok(micro_in(micro_server, tmp_path, "new", "hello"))
    project = tmp_path / "hello"
    ok(micro_in(micro_server, project, "run", "."))
    assert re.search(
        r"hello\s+latest\s+\.\s+running", ok(micro_in(micro_server, project, "status"))
    )
    answer = ok(micro_in(micro_server, project, "call", "hello", "Hello.Call", '{"name":"x"}'))
    assert json.loads(answer) == {"msg": "Hello x"}
    assert "Registered [service] hello" in ok(micro_in(micro_server, project, "logs", "hello"))
    ok(micro_in(micro_server, project, "kill", "hello"))
    assert ok(micro_in(micro_server, project, "status")) == ""


def test_watch_restarts_on_change(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    folder = write_probe(tmp_path / "probe")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "micro", "run", str(folder), "--watch"],
        env=micro_server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stderr is not None
        assert "Watching" in watcher.stderr.readline()
        time.sleep(1.0)  # the watch is set up as the loop waits for its first change
        write_probe(folder, version="two")
        assert "Files changed: restarting probe" in watcher.stderr.readline()

        def says_two() -> bool:
            done = micro_server.micro("call", "probe", "Probe.Version", '{"key":""}')
            return done.returncode == 0 and json.loads(done.stdout) == {"text": "two"}

        eventually(says_two, "the restarted service to answer with the new code")
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=15)
    # the service outlives the watch
    assert status_of(micro_server, "probe")["status"] == "running"


def test_only_admins_run_and_anyone_of_the_namespace_reads(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    ok(micro_server.micro("auth", "create", "account", "bob", "--secret", "bobpw"))
    ok(micro_server.micro("login", "--username", "bob", "--password", "bobpw"))
    assert "Admin access required" in failed(micro_server.micro("run", str(HELLOWORLD.parent)), 127)
    assert ok(micro_server.micro("status")) == ""
    ok(micro_server.micro("logout"))
    assert "Not authorized" in failed(micro_server.micro("status"), 2)


def test_the_runtime_does_not_run_alone(micro_server: MicroServerProcess) -> None:
    out = failed(micro_server.micro("service", "runtime"), 1)
    assert out == "The runtime block runs only inside micro server"
