"""Builds one virtualenv: ``python -I -m micro.runtime.builder <venv> [--requirements FILE]
[--uv UV]``, run by :func:`micro.runtime.build.ensure_venv` in the namespace's sandbox.

It runs as the namespace's user because installing runs the packages' own build code:
that code must be able to do no more than the service itself. It creates the venv,
installs the requirements with uv (pip when no uv is given), puts the platform's
site-packages after the venv's own (a ``.pth`` file, see :mod:`micro.runtime.build`) and
writes :data:`READY` last. The installer's output is this process's; a failure ends with
an ``error: ...`` line and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Final

__all__ = ["READY", "python_of", "site_packages"]

READY: Final = ".micro-ready"
"""The file that marks a finished venv; a folder without it is never used."""


def python_of(env: Path) -> Path:
    """A venv's python executable."""
    return env / "Scripts" / "python.exe" if os.name == "nt" else env / "bin" / "python"


def site_packages(env: Path) -> Path:
    """A venv's site-packages folder."""
    paths = sysconfig.get_paths(scheme="venv", vars={"base": str(env), "platbase": str(env)})
    return Path(paths["purelib"])


def _write_pth(env: Path) -> None:
    """Put this interpreter's site-packages (the platform's) after the venv's own.
    ``site.addsitedir`` also runs their ``.pth`` files, which is how editable installs
    are found."""
    paths = sysconfig.get_paths()
    dirs = dict.fromkeys([paths["purelib"], paths["platlib"]])
    text = "".join(f"import site; site.addsitedir({path!r})\n" for path in dirs)
    (site_packages(env) / "_micro_platform.pth").write_text(text, encoding="utf-8")


def build(env: Path, requirements: Path | None, uv: str | None) -> int:
    """Create, install, mark ready; the installer's exit code when it fails."""
    reqs = requirements.read_text(encoding="utf-8") if requirements is not None else ""
    venv.EnvBuilder(with_pip=bool(reqs) and uv is None, symlinks=True).create(env)
    if requirements is not None:
        python = str(python_of(env))
        if uv is not None:
            command = [uv, "pip", "install", "--python", python, "-r", str(requirements)]
        else:
            command = [python, "-m", "pip", "install", "--disable-pip-version-check"]
            command += ["--no-input", "-r", str(requirements)]
        print(" ".join(command[:3]) + " ...", flush=True)
        try:
            rc = subprocess.call(command, stdin=subprocess.DEVNULL)
        except OSError as exc:
            print(f"error: cannot run {command[0]}: {exc}", flush=True)
            return 1
        if rc != 0:
            return rc
    # After the install, so the installer sees only the venv's own packages and installs
    # every requirement into it.
    _write_pth(env)
    (env / READY).write_text(reqs or "\n", encoding="utf-8")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="micro.runtime.builder")
    parser.add_argument("venv", type=Path)
    parser.add_argument("--requirements", type=Path)
    parser.add_argument("--uv")
    args = parser.parse_args()
    try:
        sys.exit(build(args.venv, args.requirements, args.uv))
    except OSError as exc:
        print(f"error: cannot build the virtualenv: {exc}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
