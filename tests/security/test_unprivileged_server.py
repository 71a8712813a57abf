"""Issue 14, item 1, the other half: a server that does not run as root.

It cannot give a namespace a user of its own, so a tenant's service would run as the
server's user and read its keys: it runs namespace ``micro``'s services only, refuses a
tenant's ``micro run`` with a clear reason, and runs it (as its own user) only when
``MICRO_INSECURE_SHARED_UID`` says every namespace is trusted.

The server really runs unprivileged: as a throwaway system user, started through the
runtime's own launcher (:mod:`micro.runtime.jail`), which makes the interpreter (under
``/root``, closed to other users) visible to it.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.security._tenant import PROBE, Tenant, make_tenant, wait_running

from micro.runtime.sandbox import LAUNCHER, Jail
from micro.testing import MicroServerProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making a throwaway user needs root")

READY = "micro server ready: proxy "


@pytest.fixture
def nobody() -> Iterator[pwd.struct_passwd]:
    """A throwaway unprivileged system user, removed after the test."""
    name = f"micro-test-{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--comment", "micro test server", name],
        check=True,
    )  # fmt: skip
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)


def start_as(user: pwd.struct_passwd, tmp_path: Path, **extra: str) -> MicroServerProcess:
    """``micro server`` run as ``user``, its ``MICRO_HOME`` its own; the platform admin's
    CLI (this process's user) has a home of its own and is logged in."""
    home = tmp_path / "server-home"
    home.mkdir()
    os.chown(home, user.pw_uid, user.pw_gid)
    password = secrets.token_urlsafe(12)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "MICRO_HOME": str(home),
        "MICRO_PROXY_ADDRESS": "127.0.0.1:0",
        "MICRO_API_ADDRESS": "127.0.0.1:0",
        "MICRO_WEB_ADDRESS": "off",
        "MICRO_GRPC_ADDRESS": "off",
        "MICRO_REGISTER_TTL": "3",
        "MICRO_REGISTER_INTERVAL": "0.5",
        "MICRO_ADMIN_PASSWORD": password,
        **extra,
    }
    argv = [sys.executable, "-m", "micro", "server"]
    spec = Jail([]).spec(user.pw_uid, user.pw_gid, argv, env, cwd=home, binds=[(home, home, True)])
    proc = subprocess.Popen(
        LAUNCHER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(spec))
    proc.stdin.close()
    seen: list[str] = []
    timer = threading.Timer(60, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(READY):
                break
        else:
            raise AssertionError(f"the unprivileged server did not start: {''.join(seen)}")
    finally:
        timer.cancel()
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
    words = line[len(READY) :].split()
    cli_home = tmp_path / "admin-home"
    cli_home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    base.update(MICRO_HOME=str(cli_home), MICRO_ADMIN_PASSWORD=password)
    edges = dict(zip(words[1::2], words[2::2], strict=False))
    server = MicroServerProcess(cli_home, words[0], proc, base, edges=edges)
    login = server.micro("login", "--username", "admin", "--password", password)
    assert login.returncode == 0, login.stderr
    return server


def whoami(tenant: Tenant) -> int:
    uid = tenant.probe("import os\nresult = os.getuid()")
    assert isinstance(uid, int)
    return uid


def test_a_server_not_run_as_root_runs_no_tenant_service(
    nobody: pwd.struct_passwd, tmp_path: Path
) -> None:
    server = start_as(nobody, tmp_path)
    try:
        tenant = make_tenant(server, tmp_path)
        done = tenant.micro("run", str(PROBE), "--name", "probe")
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        reason = f"This server cannot run the services of namespace {tenant.namespace}: it"
        assert f"{reason} does not run as root" in done.stderr
        assert "MICRO_INSECURE_SHARED_UID" in done.stderr
        assert tenant.micro("status").stdout == ""
        # its own namespace's services run, as the server's user
        done = server.micro("run", str(PROBE), "--name", "probe", timeout=120)
        assert done.returncode == 0, done.stderr
        wait_running(server.micro, "probe")
        answer = server.micro(
            "call", "probe", "Probe.Run", '{"code": "import os\\nresult = os.getuid()"}'
        )
        assert json.loads(answer.stdout)["result"] == nobody.pw_uid
    finally:
        server.stop()


def test_the_insecure_setting_runs_tenants_as_the_server_s_user(
    nobody: pwd.struct_passwd, tmp_path: Path
) -> None:
    server = start_as(nobody, tmp_path, MICRO_INSECURE_SHARED_UID="1")
    try:
        tenant = make_tenant(server, tmp_path)
        tenant.run_probe()
        assert whoami(tenant) == nobody.pw_uid
    finally:
        server.stop()
