"""micro.runtime.build: a service's requirements, its venv, and its entrypoint.

Venvs are built for real, offline: the one requirement installed is a wheel made here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests._support import write

from micro.runtime import build as build_module
from micro.runtime.build import READY, Build, BuildError, build_key, ensure_venv, requirements
from micro.runtime.entrypoint import Entrypoint, find_entrypoint


def run(
    argv: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --------------------------------------------------------------------------- requirements


def test_requirements_from_pyproject_without_the_platform(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """
[project]
name = "hello"
dependencies = [
    "msgspec>=0.18",
    "micro-python>=0.1",
    "Micro_Python",
    "micro.python[nats]>=0.1; python_version >= '3.11'",
    "MICRO--PYTHON @ file:///somewhere/micro.whl",
    "micro-pythonic",
    "  requests[socks]  ",
]
""",
    )
    write(tmp_path / "requirements.txt", "ignored\n")
    assert requirements(tmp_path) == ["msgspec>=0.18", "micro-pythonic", "requests[socks]"]


def test_requirements_from_requirements_txt(tmp_path: Path) -> None:
    # A pyproject.toml without [project].dependencies (tool settings only) does not count.
    write(tmp_path / "pyproject.toml", "[tool.ruff]\nline-length = 100\n")
    write(
        tmp_path / "requirements.txt",
        "# the service's deps\n"
        "\n"
        "msgspec>=0.18  # inline comment\n"
        "-r more/extra.txt\n"
        "--index-url https://example.invalid/simple\n"
        "MICRO-PYTHON==0.1\n"
        "click \\\n"
        "  >=8\n",
    )
    write(tmp_path / "more" / "extra.txt", "-r ../base.txt\nattrs\n")
    write(tmp_path / "base.txt", "rich\n-r more/extra.txt\n")  # a cycle, followed once
    assert requirements(tmp_path) == [
        "msgspec>=0.18",
        "rich",
        "attrs",
        "--index-url https://example.invalid/simple",
        "click   >=8",
    ]


def test_requirements_anchor_constraint_files(tmp_path: Path) -> None:
    write(tmp_path / "requirements.txt", "-c constraints.txt\nattrs\n")
    assert requirements(tmp_path) == [f"-c {tmp_path / 'constraints.txt'}", "attrs"]


def test_no_requirements(tmp_path: Path) -> None:
    assert requirements(tmp_path) == []
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\ndependencies = []\n')
    assert requirements(tmp_path) == []


def test_malformed_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project\nname = 'x'\n")
    with pytest.raises(BuildError, match=r"^pyproject.toml is not valid TOML: .*line 1"):
        requirements(tmp_path)


def test_missing_include(tmp_path: Path) -> None:
    write(tmp_path / "requirements.txt", "-r nope.txt\n")
    with pytest.raises(BuildError, match=r"cannot read nope.txt \(included by requirements.txt\)"):
        requirements(tmp_path)


def test_build_key() -> None:
    key = build_key(["msgspec", "attrs>=23"])
    assert len(key) == 16
    assert int(key, 16) >= 0
    assert build_key(["attrs>=23", " msgspec "]) == key
    assert build_key(["msgspec", "attrs>=24"]) != key
    assert build_key([]) != key
    assert build_key([]) == build_key([])


# --------------------------------------------------------------------------- entrypoint


def test_entrypoint_main_py_comes_first(tmp_path: Path) -> None:
    write(tmp_path / "main.py", "import sys; print('main'); sys.exit(2)\n")
    write(tmp_path / "hello" / "__main__.py")
    entry = find_entrypoint(tmp_path)
    assert entry == Entrypoint(["main.py"], {}, "main.py")
    result = run([sys.executable, *entry.argv], cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "main\n")


def test_entrypoint_package(tmp_path: Path) -> None:
    write(tmp_path / "hello" / "__init__.py")
    write(tmp_path / "hello" / "__main__.py", "print('package', __name__)\n")
    entry = find_entrypoint(tmp_path)
    assert entry == Entrypoint(["-m", "hello"], {}, "python -m hello")
    result = run([sys.executable, *entry.argv], cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "package __main__\n"), result.stderr


def test_entrypoint_src_layout(tmp_path: Path) -> None:
    write(tmp_path / "src" / "hello" / "__init__.py")
    write(tmp_path / "src" / "hello" / "__main__.py", "print('src package')\n")
    entry = find_entrypoint(tmp_path)
    assert entry == Entrypoint(
        ["-m", "hello"], {"PYTHONPATH": str(tmp_path / "src")}, "python -m hello"
    )
    result = run([sys.executable, *entry.argv], cwd=tmp_path, env=entry.env)
    assert (result.returncode, result.stdout) == (0, "src package\n"), result.stderr


def test_entrypoint_among_several_packages(tmp_path: Path) -> None:
    write(tmp_path / "alpha" / "__main__.py")
    write(tmp_path / "src" / "hello_world" / "__main__.py")
    write(tmp_path / "not-a-package" / "__main__.py")  # not importable: ignored
    assert find_entrypoint(tmp_path, name="hello-world").argv == ["-m", "hello_world"]
    assert find_entrypoint(tmp_path, name="alpha").argv == ["-m", "alpha"]
    with pytest.raises(BuildError) as info:
        find_entrypoint(tmp_path, name="other")
    assert str(info.value).startswith(
        f"several packages with __main__.py in {tmp_path.name}: alpha, hello_world;"
    )


SCRIPTS = """
[project]
name = "hello"

[project.scripts]
other = "hello.app:other"
hello = "hello.app:main"
nested = "hello.app:tool.run [extra]"
"""

APP = """
import sys

def main():
    print("hello from main", sys.argv[0])
    return 3

def other():
    print("other")

class tool:
    @staticmethod
    def run():
        return "failed by message"
"""


def test_entrypoint_project_scripts(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", SCRIPTS)
    write(tmp_path / "src" / "hello" / "__init__.py")
    write(tmp_path / "src" / "hello" / "app.py", APP)
    env = {"PYTHONPATH": str(tmp_path / "src")}

    entry = find_entrypoint(tmp_path, name="hello")
    assert entry.env == env
    assert entry.description == "script hello = hello.app:main"
    result = run([sys.executable, *entry.argv], cwd=tmp_path, env=entry.env)
    assert (result.returncode, result.stdout) == (3, "hello from main -c\n"), result.stderr

    first = find_entrypoint(tmp_path)  # no name: the first script
    assert first.description == "script other = hello.app:other"
    result = run([sys.executable, *first.argv], cwd=tmp_path, env=first.env)
    assert (result.returncode, result.stdout) == (0, "other\n"), result.stderr

    nested = find_entrypoint(tmp_path, name="nested")
    assert nested.description == "script nested = hello.app:tool.run"
    result = run([sys.executable, *nested.argv], cwd=tmp_path, env=nested.env)
    assert (result.returncode, result.stderr) == (1, "failed by message\n")


def test_entrypoint_bad_script(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\nscripts = {x = "not valid"}\n')
    with pytest.raises(BuildError, match=r"\[project.scripts\] x = 'not valid' is not"):
        find_entrypoint(tmp_path)


def test_no_entrypoint(tmp_path: Path) -> None:
    source = tmp_path / "hello"
    write(source / "lib.py")
    write(source / "pyproject.toml", '[project]\nname = "hello"\n')
    with pytest.raises(BuildError) as info:
        find_entrypoint(source)
    assert str(info.value) == (
        "no entrypoint: expected main.py, a package with __main__.py,"
        " or a [project.scripts] entry in pyproject.toml"
    )


# --------------------------------------------------------------------------- venv


def make_wheel(folder: Path, name: str = "tinypkg", version: str = "1.0") -> Path:
    """A pure-Python wheel built by hand, so a real install needs no index."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = 'tiny {version}'\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installers that cannot reach an index, with a cache of their own."""
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))


def venv_python(build: Build, code: str) -> subprocess.CompletedProcess[str]:
    return run([str(build.python), "-c", code], cwd=build.python.parent)


async def test_venv_without_requirements(tmp_path: Path) -> None:
    source = tmp_path / "hello"
    write(source / "main.py")
    venvs = tmp_path / "venvs"
    lines: list[str] = []
    built = await ensure_venv(source, venvs, log=lines.append)

    assert built == Build(build_key([]), venvs / build_key([]) / "bin" / "python")
    assert (venvs / built.key / READY).is_file()
    assert lines  # it said what it did
    assert list(venvs.iterdir()) == [venvs / built.key]  # no temporary folder left
    # A real venv that imports the platform (and its dependencies) through the .pth.
    result = venv_python(built, "import sys, micro, msgspec; print(sys.prefix)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(venvs / built.key)

    # The second call finds it ready: no rebuild, nothing logged.
    marker = write(venvs / built.key / "marker")
    again: list[str] = []
    assert await ensure_venv(source, venvs, log=again.append) == built
    assert marker.exists()
    assert again == []


async def test_concurrent_calls_share_one_build(tmp_path: Path) -> None:
    source = tmp_path / "hello"
    write(source / "main.py")
    venvs = tmp_path / "venvs"
    lines: list[str] = []
    first, second = await asyncio.gather(
        ensure_venv(source, venvs, log=lines.append),
        ensure_venv(source, venvs, log=lines.append),
    )
    assert first == second
    assert sum(line.startswith("building virtualenv") for line in lines) == 1
    assert list(venvs.iterdir()) == [venvs / first.key]
    assert build_module._building == {}  # no lock outlives its build


@pytest.mark.usefixtures("offline")
async def test_venv_installs_a_requirement(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    source = tmp_path / "hello"
    write(source / "main.py")
    write(source / "requirements.txt", f"tinypkg @ {wheel.as_uri()}\nmicro-python\n")
    lines: list[str] = []
    built = await ensure_venv(source, tmp_path / "venvs", log=lines.append)

    assert built.key == build_key([f"tinypkg @ {wheel.as_uri()}"])
    assert any("tinypkg" in line for line in lines)  # the installer's output was streamed
    result = venv_python(
        built, "import tinypkg, micro; print(tinypkg.VALUE); print(tinypkg.__file__)"
    )
    assert result.returncode == 0, result.stderr
    value, location = result.stdout.splitlines()
    assert value == "tiny 1.0"
    assert Path(location).is_relative_to(tmp_path / "venvs" / built.key)


@pytest.mark.usefixtures("offline")
async def test_venv_with_pip_when_there_is_no_uv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_module, "find_uv", lambda: None)
    wheel = make_wheel(tmp_path, version="2.0")
    source = tmp_path / "hello"
    write(source / "requirements.txt", f"tinypkg @ {wheel.as_uri()}\n")
    built = await ensure_venv(source, tmp_path / "venvs")
    result = venv_python(built, "import tinypkg, micro; print(tinypkg.VALUE)")
    assert (result.returncode, result.stdout) == (0, "tiny 2.0\n"), result.stderr


@pytest.mark.usefixtures("offline")
async def test_venv_with_a_broken_requirement(tmp_path: Path) -> None:
    source = tmp_path / "hello"
    write(source / "requirements.txt", "broken @ file:///nonexistent/broken-1.0.tar.gz\n")
    venvs = tmp_path / "venvs"
    with pytest.raises(BuildError) as info:
        await ensure_venv(source, venvs)
    message = str(info.value)
    assert "nonexistent" in message
    assert message.startswith("error:")  # uv's own line
    assert message.endswith("(exit code 1)")
    assert list(venvs.iterdir()) == []  # neither a ready venv nor a temporary one


@pytest.mark.usefixtures("offline")
async def test_venv_install_timeout(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    source = tmp_path / "hello"
    write(source / "requirements.txt", f"tinypkg @ {wheel.as_uri()}\n")
    venvs = tmp_path / "venvs"
    with pytest.raises(BuildError, match=r"^dependency install timed out after 0s$"):
        await ensure_venv(source, venvs, timeout=0)
    assert list(venvs.iterdir()) == []


def test_local_packages_of_a_repository_join_the_path_not_the_install(tmp_path: Path) -> None:
    from micro.runtime.build import dependencies, import_root

    write(tmp_path / "services/hello/requirements.txt", "httpx\n-e ../../libs/a\n")
    write(
        tmp_path / "libs/a/pyproject.toml",
        '[project]\nname="a"\ndependencies=["b","rich"]\n'
        '[tool.uv.sources]\nb = { path = "../b" }\n',
    )
    write(tmp_path / "libs/a/src/a/__init__.py")
    write(tmp_path / "libs/b/requirements.txt", "msgspec\n")
    lines, packages = dependencies(tmp_path / "services/hello", tmp_path)
    assert lines == ["httpx", "msgspec", "rich"]  # depth first: b's own before rich
    assert packages == [(tmp_path / "libs/a").resolve(), (tmp_path / "libs/b").resolve()]
    assert import_root(packages[0]) == packages[0] / "src"
    assert import_root(packages[1]) == packages[1]
    write(tmp_path / "services/bad/requirements.txt", "../../../outside\n")
    with pytest.raises(BuildError, match="outside"):
        dependencies(tmp_path / "services/bad", tmp_path)
