"""The wheel, installed as a user would (``pipx install micro-python``) on a machine without
the repository: ``micro server``, ``micro new``, ``micro run`` and ``micro call`` work.

Offline: the wheel is built here (hatchling, no build isolation), and pipx installs it and
its dependencies from this machine's package sources only (``PIP_FIND_LINKS`` folders,
plus ``.venv/wheelhouse`` that ``scripts/setup`` fills with the one wheel they lack).
Everything runs in a temporary folder outside the repository, with a ``PATH`` holding
the installed ``micro`` and the system's tools only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests._support import ROOT

from micro.testing import start_server

SOURCES = [Path(p) for p in os.environ.get("PIP_FIND_LINKS", "/opt/pypi/files").split()]
SOURCES += [Path("/opt/pypi/files"), ROOT / ".venv" / "wheelhouse"]


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done  # type: ignore[no-any-return]


def test_the_wheel_installed_with_pipx_runs_the_platform(tmp_path: Path) -> None:
    sources = [p for p in dict.fromkeys(SOURCES) if p.is_dir()]
    if not any((p / "msgspec").exists() or any(p.glob("msgspec-*.whl")) for p in sources):
        pytest.skip(f"no local package sources with the dependencies in {SOURCES}")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)], cwd=ROOT)
    [wheel] = dist.glob("micro_python-*.whl")

    bin_dir = tmp_path / "bin"
    pipx_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "user"),
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    links = " ".join(f"--find-links {p}" for p in sources)
    python = shutil.which("python3") or sys.executable
    _run(
        [
            sys.executable,
            "-m",
            "pipx",
            "install",
            "--python",
            python,
            str(wheel),
            f"--pip-args=--no-index {links}",
        ],
        env=pipx_env,
        cwd=tmp_path,
    )
    micro = bin_dir / "micro"
    assert micro.exists()

    # A machine without the repository: no .venv on PATH, nothing of this checkout around.
    work = tmp_path / "work"
    work.mkdir()
    path = os.pathsep.join(
        [str(bin_dir)]
        + [p for p in os.environ.get("PATH", "").split(os.pathsep) if str(ROOT) not in p]
    )
    env = {"PATH": path, "HOME": str(tmp_path / "user")}
    server = start_server(tmp_path / "home", env=env, command=[str(micro)])
    try:
        assert Path(server.micro("--help").args[0]) == micro
        _run([str(micro), "new", "hello"], cwd=work, env=server.env())
        _run([str(micro), "example", "helloworld"], cwd=work, env=server.env())
        for name in ("hello", "helloworld"):  # each returns once it is running
            _run([str(micro), "run", name], cwd=work, env=server.env())
        hello = _run(
            [str(micro), "call", "hello", "Hello.Call", '{"name":"John"}'], env=server.env()
        )
        assert json.loads(hello.stdout) == {"msg": "Hello John"}
        world = _run(
            [str(micro), "call", "helloworld", "Helloworld.Call", '{"name":"Ann"}'],
            env=server.env(),
        )
        assert json.loads(world.stdout) == {"msg": "Hello Ann"}
    finally:
        for name in ("hello", "helloworld"):
            server.micro("kill", name)
        server.stop()


def test_the_wheel_installs_with_uv_tool_too(tmp_path: Path) -> None:
    sources = [p for p in dict.fromkeys(SOURCES) if p.is_dir()]
    if not any(any(p.glob("msgspec-*.whl")) for p in sources):
        pytest.skip(f"no local package sources with the dependencies in {SOURCES}")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)], cwd=ROOT)
    [wheel] = dist.glob("micro_python-*.whl")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "user"),
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
        "UV_CACHE_DIR": str(tmp_path / "cache"),
    }
    links = [arg for p in sources for arg in ("--find-links", str(p))]
    python = shutil.which("python3") or sys.executable
    uv = Path(sys.executable).parent / "uv"
    _run(
        [str(uv), "tool", "install", "--no-index", *links, "--python", python, str(wheel)], env=env
    )
    version = _run([str(tmp_path / "bin" / "micro"), "--version"], env=env, cwd=tmp_path)
    assert version.stdout.strip() == "micro, version 0.1.0"
    listed = _run([str(tmp_path / "bin" / "micro"), "example"], env=env, cwd=tmp_path)
    assert listed.stdout.split() == ["helloworld"]
