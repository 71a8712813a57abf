"""A platform with a second namespace and its admin, as the attacks in this folder need.

``tenant1`` (a fresh name per test, so users and records of one test never meet
another's) has an admin account whose CLI has a ``MICRO_HOME`` of its own: what the
tenant runs, it runs as itself, never as the platform's admin.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micro.testing import MicroServerProcess

PROBE = Path(__file__).resolve().parent / "probe"
"""The attacker's service: runs whatever Python its caller sends (``Probe.Run``)."""

MADE: list[str] = []
"""The namespaces made in this session: a root server made a system user for each one
that ran something (``conftest.py`` removes them at the end)."""


@dataclass
class Tenant:
    """A namespace of the server and the CLI of its admin."""

    server: MicroServerProcess
    namespace: str
    admin: str
    password: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The tenant admin's environment: its own home, never the platform's password."""
        env = self.server.env(MICRO_HOME=str(self.home))
        env.pop("MICRO_ADMIN_PASSWORD", None)
        env.update(extra)
        return env

    def micro(self, *args: str, input: str | None = None, timeout: float = 60.0) -> Any:
        """Run ``micro`` as the tenant admin."""
        return subprocess.run(
            [sys.executable, "-m", "micro", *args],
            env=self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def token(self) -> str:
        """A fresh access token of the tenant admin."""
        done = self.micro("user", "token")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def run_probe(self, name: str = "probe", *, timeout: float = 120.0) -> None:
        """``micro run`` the attacker's service in the tenant's namespace, until running."""
        done = self.micro("run", str(PROBE), "--name", name, timeout=timeout)
        assert done.returncode == 0, (done.stdout, done.stderr)
        wait_running(self.micro, name, timeout=timeout)

    def probe(self, code: str, *, name: str = "probe") -> Any:
        """Run ``code`` inside the tenant's probe service; its ``result`` (or raise)."""
        request = json.dumps({"code": code})
        done = self.micro("call", name, "Probe.Run", request)
        assert done.returncode == 0, (done.stdout, done.stderr)
        answer = json.loads(done.stdout)
        if answer.get("error"):
            raise ProbeError(answer["error"])
        return answer.get("result")


class ProbeError(Exception):
    """What the probe's code raised, as text."""


def wait_running(micro: Any, name: str, *, timeout: float = 120.0) -> None:
    """Wait until ``micro status`` shows ``name`` running (fail at error or timeout)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        done = micro("status", name, "-o", "json")
        last = done.stdout + done.stderr
        if done.returncode == 0:
            services = [json.loads(line) for line in done.stdout.splitlines() if line]
            status = services[0]["status"] if services else ""
            if status == "running":
                return
            if status == "error":
                raise AssertionError(f"{name} failed: {last}")
        time.sleep(0.2)
    raise AssertionError(f"{name} is not running after {timeout}s: {last}")


def make_tenant(server: MicroServerProcess, tmp_path: Path) -> Tenant:
    """Create a namespace (as the platform admin), its admin account, and log its CLI in."""
    namespace = f"tenant{secrets.token_hex(3)}"
    MADE.append(namespace)
    password = secrets.token_urlsafe(12)
    made = server.micro(
        "auth", "create", "account", "tadmin",
        "--namespace", namespace, "--secret", password, "--scopes", "admin",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    tenant = Tenant(server, namespace, "tadmin", password, tmp_path / f"{namespace}-home")
    tenant.home.mkdir(parents=True)
    assert tenant.micro("user", "namespace", "set", namespace).returncode == 0
    login = tenant.micro("login", "--username", "tadmin", "--password", password)
    assert login.returncode == 0, login.stderr
    return tenant
