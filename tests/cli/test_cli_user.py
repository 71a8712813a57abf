"""``micro login|logout|user|auth`` without a server: what needs no server works, the
rest fails in one line. Each command runs as ``python -m micro`` in a temporary home.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests._support import failed, ok

from micro.auth.base import Token
from micro.auth.credentials import TokenFile

Micro = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "micro-home"


@pytest.fixture
def proxy() -> str:
    """An address where no server listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def micro(home: Path, proxy: str) -> Micro:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    base.update(MICRO_HOME=str(home), MICRO_PROXY=proxy)

    def run(*args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "micro", *args],
            env={**base, **env},
            input=input,
            capture_output=True,
            text=True,
            timeout=30,
        )

    return run


def jwt_like(claims: dict[str, str]) -> str:
    """A token shaped like a JWT (the CLI reads the name from it; the server verifies)."""
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{part}.c2lnbmF0dXJl"


def logged_in(home: Path, proxy: str, ns: str = "micro", left: float = 600) -> str:
    """Write a login as ``micro login`` would; its access token."""
    home.mkdir(parents=True, exist_ok=True)
    access = jwt_like({"sub": "jane", "name": "Jane", "iss": ns})
    now = int(time.time())
    TokenFile(home).put(proxy, ns, "jane", Token(access, "refresh", now, int(now + left)))
    (home / "config.json").write_text(
        json.dumps({"env": "local", "local": {"current-user": "jane"}})
    )
    return access


def test_not_logged_in(micro: Micro) -> None:
    assert failed(micro("user"), 1) == "You are not logged in"
    assert failed(micro("user", "token"), 1) == "You are not logged in"
    assert failed(micro("user", "set", "password", "--new-password", "x"), 1) == (
        "You are not logged in"
    )
    assert ok(micro("logout")) == ""


def test_logged_in_without_a_server(micro: Micro, home: Path, proxy: str) -> None:
    access = logged_in(home, proxy)
    assert ok(micro("user")) == "Jane\n"
    assert ok(micro("user", "token")) == access + "\n"  # fresh: no server needed
    assert ok(micro("user", "config")).splitlines()[0] == "user: Jane"
    # -n aims one command elsewhere: with no login there, the current namespace's is used.
    assert ok(micro("-n", "foo", "user")) == "Jane\n"
    assert ok(micro("-n", "foo", "logout")) == ""  # logs out of foo only: nothing there
    assert ok(micro("user")) == "Jane\n"
    # Another server: not logged in there.
    assert failed(micro("user", "token", MICRO_PROXY="127.0.0.1:1"), 1) == "You are not logged in"


def test_expired_token_needs_the_server(micro: Micro, home: Path, proxy: str) -> None:
    access = logged_in(home, proxy, left=10)
    # Refreshing fails, but the token in hand is still good for 10 s: used.
    assert ok(micro("user", "token")) == access + "\n"
    logged_in(home, proxy, left=-10)
    assert failed(micro("user", "token"), 4) == f"Failed to connect to micro server at {proxy}"


def test_logout_without_a_server_still_logs_out(micro: Micro, home: Path, proxy: str) -> None:
    logged_in(home, proxy)
    out = micro("logout")
    assert out.returncode == 0
    assert "Logged out here, but the server was not told" in out.stderr
    assert failed(micro("user"), 1) == "You are not logged in"
    assert TokenFile(home).logins() == []


def test_namespace(micro: Micro, home: Path) -> None:
    assert ok(micro("user", "namespace")) == "micro\n"
    assert ok(micro("user", "namespace", "set", "foo")) == ""
    assert ok(micro("user", "namespace")) == "foo\n"
    assert json.loads((home / "config.json").read_text())["namespaces"]["local"] == {
        "current": "foo"
    }
    assert ok(micro("-n", "bar", "user", "namespace")) == "bar\n"
    assert failed(micro("user", "namespace", "set", "a/b"), 1).startswith("Invalid namespace")
    assert ok(micro("user", "config")).splitlines() == [
        "user: n/a",
        "namespace: foo",
        "environment: local",
        "git.credentials: n/a",
        "git.baseurl: n/a",
    ]


def test_user_config_get_set_delete(micro: Micro) -> None:
    assert failed(micro("user", "config", "get", "git.baseurl"), 1) == "Not found"
    ok(micro("user", "config", "set", "git.baseurl", "github.com/me/services"))
    ok(micro("user", "config", "set", "git.credentials.github", "ghp_secret"))
    assert ok(micro("user", "config", "get", "git.baseurl")) == "github.com/me/services\n"
    assert ok(micro("user", "config", "get", "git.credentials")) == ('{"github":"ghp_secret"}\n')
    summary = ok(micro("user", "config")).splitlines()
    assert "git.credentials: [hidden]" in summary
    assert "git.baseurl: github.com/me/services" in summary
    ok(micro("user", "config", "delete", "git.baseurl"))
    assert failed(micro("user", "config", "get", "git.baseurl"), 1) == "Not found"
    assert failed(micro("user", "config", "get", "a..b"), 1).startswith("Invalid key")


def test_login_without_a_server(micro: Micro, proxy: str) -> None:
    out = micro("login", input="admin\nsecret\n")
    assert out.returncode == 4
    assert out.stdout == "Enter username: \nEnter password: \n"
    assert out.stderr == f"Failed to connect to micro server at {proxy}\n"
    assert "secret" not in out.stdout + out.stderr


def test_local_checks_before_calling(micro: Micro) -> None:
    bad = micro("auth", "create", "rule", "r1", "--resource", "service:x")
    assert failed(bad, 1) == "Error: Invalid resource, must be in the format type:name:endpoint"
    bad = micro("auth", "create", "rule", "r1", "--resource", "*:*:*", "--access", "maybe")
    assert failed(bad, 1) == "Error: Invalid access: maybe, must be granted or denied"
    assert failed(micro("auth", "create", "token", "--secret", "x"), 1) == "Missing account ID"
    assert failed(micro("auth", "create", "token", "--id", "x"), 1) == "Missing account secret"
    assert failed(micro("auth", "nope"), 1).startswith("Unrecognized subcommand for micro auth")
    assert failed(micro("auth", "list", "rules"), 4).startswith("Failed to connect")


@pytest.mark.parametrize(
    "command",
    [
        "login",
        "logout",
        "user",
        "user token",
        "user namespace",
        "user config",
        "user set password",
        "auth",
        "auth list rules",
        "auth create account",
        "auth update secret",
    ],
)
def test_help(micro: Micro, command: str) -> None:
    out = ok(micro(*command.split(), "--help"))
    assert out.startswith(f"micro {command} - ")


def test_listed_in_help(micro: Micro) -> None:
    out = ok(micro("--help"))
    for name in ("auth", "login", "logout", "user"):
        assert f"  {name} " in out
