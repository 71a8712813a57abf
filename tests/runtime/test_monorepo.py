"""Services from folders of a repository (issue 15): a monorepo run by tag and branch,
from its local work tree, by short name, and from a private repository over HTTP with a
token that is never shown. One server for the module."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support import ok
from tests.runtime._monorepo import Monorepo, git_http_server, make_monorepo
from tests.runtime.test_run_cli import call, eventually, refused, status_of

from micro.testing import MicroServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicroServerProcess]:
    started = start_server(tmp_path_factory.mktemp("monorepo-home"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def mono(tmp_path_factory: pytest.TempPathFactory) -> Monorepo:
    return make_monorepo(tmp_path_factory.mktemp("monorepo"))


def greet(server: MicroServerProcess, name: str) -> str:
    handler = name.capitalize()
    return str(call(server, name, f"{handler}.Greet", "{}")["text"])


def test_two_services_and_shared_code_by_tag_and_branch(
    server: MicroServerProcess, mono: Monorepo
) -> None:
    # the explicit separator, by tag; the .git suffix ending the repository, by branch
    ok(server.micro("run", f"file://{mono.bare}//services/hello@v1", timeout=120))
    ok(server.micro("run", f"file://{mono.bare}/services/bye@dev", timeout=120))
    assert greet(server, "hello") == "hello from v1"  # a path dependency of the repository
    assert greet(server, "bye") == "bye from dev"  # a src/ package at the repository's root
    hello, bye = status_of(server, "hello"), status_of(server, "bye")
    assert (hello["version"], bye["version"]) == ("v1", "dev")
    assert hello["metadata"]["source"] == f"file://{mono.bare}//services/hello@v1"  # type: ignore[index]
    # the repository was fetched once per ref, in a cache of the namespace
    clones = server.home / "server" / "runtime" / "repos" / "micro"
    [repo] = clones.iterdir()
    assert len(list(repo.iterdir())) == 2
    ok(server.micro("run", f"file://{mono.bare}//services/bye@v1", "--name", "bye1"))
    assert len(list(repo.iterdir())) == 2  # v1 again: no second clone
    ok(server.micro("kill", "hello", "bye", "bye1"))


def test_a_folder_of_a_local_work_tree(server: MicroServerProcess, mono: Monorepo) -> None:
    folder = mono.work / "services" / "hello"
    ok(in_folder(server, folder, "run", "."))
    row = status_of(server, "hello")
    assert row["metadata"]["source"] == "services/hello"  # type: ignore[index]
    assert greet(server, "hello") == "hello from v1"  # the shared package was sent too
    ok(server.micro("kill", "hello"))


def in_folder(
    server: MicroServerProcess, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*server.command, *args],
        cwd=cwd,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_short_names_resolve_against_git_baseurl(
    server: MicroServerProcess, mono: Monorepo
) -> None:
    ok(server.micro("user", "config", "set", "git.baseurl", f"file://{mono.bare}/services"))
    try:
        ok(server.micro("run", "bye@v1", timeout=120))
        assert status_of(server, "bye")["version"] == "v1"
        assert greet(server, "bye") == "bye from v1"
    finally:
        ok(server.micro("user", "config", "delete", "git.baseurl"))
    out = refused(server.micro("run", "nothing@v1"))
    assert "git.baseurl" in out
    ok(server.micro("kill", "bye"))


def test_a_private_repository_with_a_token(server: MicroServerProcess, mono: Monorepo) -> None:
    token = secrets.token_hex(16)
    with git_http_server(mono.bare.parent, token) as (base, seen):
        url = f"{base}/mono.git//services/hello@v1"
        # without the token: a clear error, and no row left in error for a name never run
        out = refused(server.micro("run", url, timeout=120))
        assert "Service hello failed: cannot clone" in out
        assert ok(server.micro("status", "hello")) == ""
        ok(server.micro("user", "config", "set", "git.credentials.127.0.0.1", token))
        ok(server.micro("run", url, timeout=120))
        assert greet(server, "hello") == "hello from v1"
        assert any(seen), "the token was sent"
    # never shown nor kept in the clear: not in status, logs, the server's files
    shown = ok(server.micro("status", "-o", "json")) + ok(
        server.micro("logs", "hello", "-n", "200")
    )
    assert token not in shown
    assert "[hidden]" in ok(server.micro("user", "config"))
    for path in (server.home / "server").rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert token.encode() not in path.read_bytes(), path
    assert json.loads(ok(server.micro("status", "hello", "-o", "json")))["status"] == "running"
    ok(server.micro("kill", "hello"))


def test_new_user_messages(server: MicroServerProcess, tmp_path: Path) -> None:
    # not logged in: told to log in
    anonymous = {**server.env(), "MICRO_HOME": str(tmp_path / "nobody")}
    done = server.micro("run", str(tmp_path), env=anonymous)
    assert "run 'micro login' first" in refused(done, 2)
    # a second server on the same ports: told which setting to change
    taken = {**server.env(), "MICRO_HOME": str(tmp_path / "second")}
    taken["MICRO_PROXY_ADDRESS"] = server.proxy
    out = refused(server.micro("server", env=taken, timeout=60))
    assert "set MICRO_PROXY_ADDRESS (--proxy_address) to another address" in out
    assert "MICRO_WEB_ADDRESS" in ok(server.micro("server", "--help"))
    # a service that is not running yet is no unknown command
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "main.py").write_text("import time\ntime.sleep(60)\n")
    run = subprocess.Popen(
        [*server.command, "run", str(slow)],
        env=server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        starting = '"status":"starting"'
        eventually(lambda: starting in ok(server.micro("status", "slow", "-o", "json")), "slow")
        out = refused(server.micro("slow", "call"), 4)
        assert "Service slow is not running: it is starting" in out
    finally:
        run.kill()
        run.wait()
        ok(server.micro("kill", "slow"))
