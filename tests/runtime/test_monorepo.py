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
from tests.runtime.test_run_cli import call, refused, status_of

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
