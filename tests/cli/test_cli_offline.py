"""The CLI without a server: environments, usage errors, and a server that is not there.

Each command runs as ``python -m micro`` in a temporary ``MICRO_HOME``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests._support import ok

Micro = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "micro-home"


@pytest.fixture
def micro(home: Path) -> Micro:
    """Run ``micro`` with ``MICRO_HOME=home`` and no other ``MICRO_*`` variable."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    base["MICRO_HOME"] = str(home)

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


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def failed(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- environments -------------------------------------------------------------------------


def test_env_lists_local_by_default(micro: Micro) -> None:
    assert ok(micro("env")) == "* local   127.0.0.1:8081   Local running Micro Server\n"
    assert ok(micro("env", "get")) == "local\n"


def test_env_add_set_get_del(micro: Micro, home: Path) -> None:
    ok(micro("env", "add", "prod", "10.0.0.5:8081", "--description", "Production"))
    ok(micro("env", "add", "later"))
    assert ok(micro("env")).splitlines() == [
        "  later   none",
        "* local   127.0.0.1:8081   Local running Micro Server",
        "  prod    10.0.0.5:8081    Production",
    ]

    ok(micro("env", "set", "prod"))
    assert ok(micro("env", "get")) == "prod\n"
    assert ok(micro("env")).splitlines()[2].startswith("* prod ")
    assert json.loads((home / "config.json").read_text())["env"] == "prod"

    line = failed(micro("env", "del", "prod"), 1)
    assert line == (
        "Environment 'prod' is your current environment. "
        "Before deleting it, please change your current environment."
    )
    ok(micro("env", "set", "local"))
    ok(micro("env", "del", "prod"))
    assert "prod" not in ok(micro("env"))


def test_env_errors(micro: Micro) -> None:
    assert failed(micro("env", "set", "nope"), 1) == "Environment 'nope' does not exist"
    assert failed(micro("env", "del", "nope"), 1) == "Environment 'nope' does not exist"
    assert "local" in failed(micro("env", "del", "local"), 1)
    assert failed(micro("env", "add", "local", "1.2.3.4:1"), 1).startswith("Environment 'local'")
    assert "port" in failed(micro("env", "add", "bad", "host:notaport"), 1)
    assert "extra argument" in failed(micro("env", "add", "x", "h:1", "more"), 1)
    assert failed(micro("env", "bogus"), 1).startswith("Unrecognized subcommand for micro env")


def test_env_flag_picks_the_environment(micro: Micro) -> None:
    port = closed_port()
    ok(micro("env", "add", "other", f"127.0.0.1:{port}"))
    assert ok(micro("-e", "other", "env")).splitlines()[1].startswith("* other ")
    line = failed(micro("-e", "other", "services"), 4)
    assert line == f"Failed to connect to micro server at 127.0.0.1:{port}"
    line = failed(micro("services", MICRO_ENV="missing"), 1)
    assert line == "Environment 'missing' does not exist"


# -- failures before or without a server --------------------------------------------------


def test_server_not_running(micro: Micro) -> None:
    proxy = f"127.0.0.1:{closed_port()}"
    for args in (
        ("services",),
        ("call", "helloworld", "Helloworld.Call", "{}"),
        ("get", "service", "helloworld"),
    ):
        line = failed(micro(*args, MICRO_PROXY=proxy), 4)
        assert line == f"Failed to connect to micro server at {proxy}"


def test_malformed_request_fails_before_connecting(micro: Micro) -> None:
    proxy = f"127.0.0.1:{closed_port()}"
    line = failed(micro("call", "helloworld", "Helloworld.Call", "{bad", MICRO_PROXY=proxy), 1)
    assert line.startswith("Invalid request: ")
    line = failed(
        micro("call", "helloworld", "Helloworld.Call", "-", input="", MICRO_PROXY=proxy), 1
    )
    assert line == "Invalid request: empty request"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "No command provided to micro. Please refer to 'micro --help'"),
        (("call", "svc"), "Missing argument 'ENDPOINT'. See 'micro call --help'"),
        (("call", "a", "B.c", "--metadata", "novalue"), "Invalid metadata 'novalue'"),
        (("call", "a", "B.c", "--request_timeout", "soon"), "Invalid --request_timeout"),
        (("call", "a", "B.c", "--request_timeout", "-1s"), "Invalid --request_timeout"),
        (("debug", "nope"), "Unrecognized subcommand for micro debug: nope"),
        (("get", "nope"), "Unrecognized subcommand for micro get: nope"),
        (("--nope",), "No such option"),
    ],
)
def test_usage_errors_are_one_line(micro: Micro, args: tuple[str, ...], expected: str) -> None:
    assert failed(micro(*args), 1).startswith(expected)


def test_an_unknown_command_needs_the_server_to_tell(micro: Micro) -> None:
    """``micro bogus`` may name a service (a dynamic command): with no server to ask, the
    answer is that the server cannot be reached, not that the command does not exist."""
    assert failed(micro("bogus"), 4).startswith("Failed to connect to micro server at ")


@pytest.mark.parametrize(
    "command",
    ["call", "stream", "services", "env", "env add", "get", "get service", "debug", "debug health"],
)
def test_help(micro: Micro, command: str) -> None:
    out = ok(micro(*command.split(), "--help"))
    assert out.startswith(f"micro {command} - ")
