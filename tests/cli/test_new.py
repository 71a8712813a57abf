"""``micro new``: the files it writes, what it prints, what it refuses, and that the
service it makes lints clean, passes its own tests and runs against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
from tests._support import failed, ok

from micro.cli.new import FILES, tree
from micro.testing import MicroServerProcess


def expected_files(snake: str = "hello") -> set[str]:
    return {
        "main.py",
        "handler.py",
        "tests/conftest.py",
        f"tests/test_{snake}.py",
        "pyproject.toml",
        "README.md",
        ".gitignore",
    }


EXPECTED_FILES = expected_files()


def _env(home: Path) -> dict[str, str]:
    """This environment without ``MICRO_*`` (no server to reach) or ``PYTEST_*`` (the
    options of this run are not the generated project's), in a temporary MICRO_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICRO_", "PYTEST_"))}
    env["MICRO_HOME"] = str(home)
    return env


def micro_new(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``micro new`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "micro", "new", *args],
        cwd=cwd,
        env=_env(cwd.parent / "cli-home"),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty folder to create services in."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def created(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# -- what it writes and prints ------------------------------------------------------------


def test_new_writes_the_project_and_prints_its_tree(work: Path) -> None:
    out = ok(micro_new(work, "hello"))
    assert out == (
        "Creating service hello\n"
        "\n"
        ".\n"
        "├── main.py\n"
        "├── handler.py\n"
        "├── tests\n"
        "│   ├── conftest.py\n"
        "│   └── test_hello.py\n"
        "├── pyproject.toml\n"
        "├── README.md\n"
        "└── .gitignore\n"
        "\n"
        "cd hello\n"
        "micro run .\n"
        'micro call hello Hello.Call \'{"name":"John"}\'\n'
    )
    folder = work / "hello"
    assert created(folder) == EXPECTED_FILES
    for path in EXPECTED_FILES:
        assert "$" not in (folder / path).read_text(), path

    main = (folder / "main.py").read_text()
    assert 'micro.Service("hello")' in main
    assert "service.handle(Hello())" in main
    assert 'if __name__ == "__main__":\n    main()' in main
    handler = (folder / "handler.py").read_text()
    assert "class Hello:" in handler
    for method in ("async def call(", "async def stream(", "async def ping_pong("):
        assert method in handler
    pyproject = (folder / "pyproject.toml").read_text()
    assert 'name = "hello"' in pyproject
    assert 'dependencies = ["micro-python"]' in pyproject
    assert 'asyncio_mode = "auto"' in pyproject
    readme = (folder / "README.md").read_text()
    for line in (
        "micro run .",
        "micro status",
        'micro call hello Hello.Call \'{"name":"John"}\'',
        "micro logs hello",
        "micro kill hello",
        "pytest",
    ):
        assert f"\n{line}\n" in readme, line
    gitignore = (folder / ".gitignore").read_text().split()
    assert {".venv/", "__pycache__/", "*.pyc", ".pytest_cache/", "build/", "dist/"} <= set(
        gitignore
    )


def test_hyphenated_name_makes_a_title_case_handler(work: Path) -> None:
    out = ok(micro_new(work, "hello-world"))
    assert out.startswith("Creating service hello-world\n")
    assert out.endswith('micro call hello-world HelloWorld.Call \'{"name":"John"}\'\n')
    folder = work / "hello-world"
    assert 'micro.Service("hello-world")' in (folder / "main.py").read_text()
    assert "class HelloWorld:" in (folder / "handler.py").read_text()
    tests = (folder / "tests" / "test_hello_world.py").read_text()
    assert 'CALL = "HelloWorld.Call"' in tests
    assert 'PING_PONG = "HelloWorld.PingPong"' in tests
    assert 'name = "hello-world"' in (folder / "pyproject.toml").read_text()


def test_a_relative_path_names_the_service_by_its_last_part(work: Path) -> None:
    out = ok(micro_new(work, "services/Greeter"))
    assert out.startswith("Creating service greeter\n")
    assert "\ncd services/Greeter\n" in out
    folder = work / "services" / "Greeter"
    assert created(folder) == expected_files("greeter")
    assert 'micro.Service("greeter")' in (folder / "main.py").read_text()
    assert "class Greeter:" in (folder / "handler.py").read_text()


def test_every_template_is_shipped_and_used() -> None:
    root = files("micro").joinpath("templates", "service")
    shipped = set()
    pending = [("", root)]
    while pending:
        prefix, folder = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((f"{prefix}{entry.name}/", entry))
            else:
                shipped.add(prefix + entry.name)
    assert shipped == {source for _, source in FILES}
    assert {path.replace("$snake", "hello") for path, _ in FILES} == EXPECTED_FILES


def test_tree_draws_nested_folders_in_order() -> None:
    assert tree(["a", "b/c", "b/d/e", "f"]) == [
        ".",
        "├── a",
        "├── b",
        "│   ├── c",
        "│   └── d",
        "│       └── e",
        "└── f",
    ]


# -- what it refuses ----------------------------------------------------------------------

INVALID = "use letters, digits and single hyphens, starting with a letter (e.g. hello-world)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Specify service name"),
        (("",), "Specify service name"),
        (("/tmp/hello",), "Require a relative path: the service is created in the current folder"),
        (("hello_world",), f"Invalid service name 'hello_world': {INVALID}"),
        (("2fast",), f"Invalid service name '2fast': {INVALID}"),
        (("hello-",), f"Invalid service name 'hello-': {INVALID}"),
        (("hello--world",), f"Invalid service name 'hello--world': {INVALID}"),
        (("hello world",), f"Invalid service name 'hello world': {INVALID}"),
        (("services/my.svc",), f"Invalid service name 'my.svc': {INVALID}"),
        ((".",), f"Invalid service name '.': {INVALID}"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_created(
    work: Path, args: tuple[str, ...], message: str
) -> None:
    result = micro_new(work, *args)
    assert result.stdout == ""
    assert failed(result, 1) == message
    assert list(work.iterdir()) == []


def test_an_existing_folder_is_refused_and_left_alone(work: Path) -> None:
    (work / "hello").mkdir()
    (work / "hello" / "main.py").write_text("mine\n")
    result = micro_new(work, "hello")
    assert result.stdout == ""
    assert failed(result, 1) == "hello already exists"
    assert created(work / "hello") == {"main.py"}
    assert (work / "hello" / "main.py").read_text() == "mine\n"


def test_help_shows_the_command(work: Path) -> None:
    assert ok(micro_new(work, "--help")).startswith(
        "micro new - Create a new service project from a template.\n"
    )
    top = subprocess.run(
        [sys.executable, "-m", "micro", "--help"],
        env=_env(work.parent / "cli-home"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "  new  " in ok(top)


# -- the service it makes -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["hello-world", "a-rather-long-service-name-for-the-formatter"])
def test_the_project_is_ruff_clean(work: Path, name: str) -> None:
    ok(micro_new(work, name))
    folder = str(work / name)
    ruff = [sys.executable, "-m", "ruff"]
    for command in (["check", "--no-cache", folder], ["format", "--check", "--no-cache", folder]):
        done = subprocess.run([*ruff, *command], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_projects_own_tests_pass(work: Path, tmp_path: Path) -> None:
    ok(micro_new(work, "hello-world"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=work / "hello-world",
        env=_env(tmp_path / "project-home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout


def test_the_service_runs_and_answers_the_cli(work: Path, micro_server: MicroServerProcess) -> None:
    ok(micro_new(work, "hello"))
    micro_server.start_service(work / "hello" / "main.py", name="hello")
    out = ok(micro_server.micro("call", "hello", "Hello.Call", '{"name":"John"}'))
    assert json.loads(out) == {"msg": "Hello John"}


_CLIENT_TEST = '''"""The hello service, called through its generated client."""

from __future__ import annotations

from typing import assert_type

import micro
from micro.testing import MicroNamespace, serving, wait_for_service

from hello_client import CallRequest, CallResponse, HelloClient, StreamRequest


class Hello:
    """Stands in for the hello service, with the client's own types."""

    async def call(self, req: CallRequest) -> CallResponse:
        return CallResponse(msg=f"Hello {req.name}")


async def test_the_client_calls_hello(micro_namespace_env: MicroNamespace) -> None:
    service = micro.Service("hello")
    service.handle(Hello())
    async with serving(service):
        await wait_for_service("hello", domain=micro_namespace_env.name)
        rsp = await HelloClient().call(CallRequest(name="John"))
    assert rsp.msg == "Hello John"
    assert StreamRequest(count=1).count == 1


async def test_the_blocks_are_typed_without_a_service(micro_namespace_env: MicroNamespace) -> None:
    # Were micro.store and the rest Any to mypy, these would fail the type check.
    await micro.store.write("k", "v")
    assert_type(await micro.store.read("k"), list[micro.store.Record])
    await micro.config.load()
    assert_type(micro.config.get("a.b").int(1), int)
    assert_type(await micro.events.publish("t", {"x": 1}), micro.events.Event)
    assert_type(micro.errors.NotFound("x", "y"), micro.errors.NotFound)
    micro.log.info("typed", key=1)
    await micro.broker.publish("t", b"x")
'''


def test_a_project_with_a_generated_client_type_checks_and_passes_its_tests(
    work: Path, tmp_path: Path
) -> None:
    ok(micro_new(work, "hello"))
    ok(micro_new(work, "orders"))
    orders = work / "orders"
    gen = ["gen", "client", "hello", "--from", str(work / "hello" / "handler.py")]
    done = subprocess.run(
        [sys.executable, "-m", "micro", *gen, "-o", str(orders / "hello_client.py")],
        env=_env(tmp_path / "gen-home"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    (orders / "tests" / "test_hello_client.py").write_text(_CLIENT_TEST)
    env = _env(tmp_path / "project-home")
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "."],
        cwd=orders,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=orders,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "7 passed" in tests.stdout
