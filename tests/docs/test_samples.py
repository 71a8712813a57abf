"""Every code sample of the documentation runs against a real server (see samples.py for
how a page's blocks are run). ``scripts/test`` builds the site with ``mkdocs build --strict``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests._support import ROOT
from tests.docs.samples import Block, blocks, pages

from micro.testing import MicroNamespace, MicroServerProcess, create_namespace

_SERVICE = re.compile(r"""micro\.Service\(\s*["']([^"']+)["']""")


def _env(ns: MicroNamespace) -> dict[str, str]:
    env = ns.env()
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT / "docs")))
def test_the_samples_of_the_page_run(
    page: Path, micro_session_server: MicroServerProcess, tmp_path: Path
) -> None:
    ns = create_namespace(micro_session_server, tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    cwd = [work]
    started = len(micro_session_server.services)
    try:
        for block in blocks(page):
            if block.title is not None:
                (cwd[0] / block.title).write_text(block.code)
            elif block.lang == "python":
                _python(ns, block, cwd[0], page)
            elif block.lang == "console":
                _console(ns, block, cwd, page)
    finally:
        for proc in micro_session_server.services[started:]:
            _stop(proc)
        del micro_session_server.services[started:]


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop a service a page started."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _where(page: Path, block: Block) -> str:
    return f"{page.relative_to(ROOT)}:{block.line}"


def _python(ns: MicroNamespace, block: Block, cwd: Path, page: Path) -> None:
    script = cwd / f"sample_{block.line}.py"
    script.write_text(block.code)
    if re.search(r"\w+\.run\(\)\Z", block.code.rstrip()):
        name = _SERVICE.search(block.code)
        assert name, f"{_where(page, block)}: a service sample names its service"
        ns.server.start_service(script, name=name.group(1), env=_env(ns))
        return
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=_env(ns),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{_where(page, block)}:\n{done.stdout}{done.stderr}"


def _console(ns: MicroNamespace, block: Block, cwd: list[Path], page: Path) -> None:
    for line in block.code.splitlines():
        if not line.startswith("$ "):
            continue
        command = line[2:].split("  #")[0].strip()
        # The pages say where a server listens by default; the test's listens elsewhere.
        for port, edge in (("8080", "api"), ("8082", "web")):
            command = command.replace(f"localhost:{port}", ns.server.edges[edge])
        if command.startswith("cd "):
            cwd[0] = (cwd[0] / command[3:].strip()).resolve()
            continue
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd[0],
            env=_env(ns),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{_where(page, block)}: {command}\n{done.stdout}{done.stderr}"
