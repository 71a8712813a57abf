"""A service's build: a virtualenv for its dependencies, and the command that starts it.

Virtualenvs live under one folder, named by :func:`build_key`, so services with the same
dependencies share one and a restart reuses it. The platform itself (``micro`` and its
dependencies) is not installed into them: a ``.pth`` file puts the platform's own
site-packages after the venv's, so a service imports the very ``micro`` the server runs,
editable installs included, while its own pinned packages still come first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import os
import re
import secrets
import shutil
import signal
import sys
import sysconfig
import tomllib
import venv
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "PLATFORM_DISTRIBUTION",
    "READY",
    "Build",
    "BuildError",
    "Entrypoint",
    "build_key",
    "ensure_venv",
    "find_entrypoint",
    "requirements",
]


class BuildError(Exception):
    """A build that failed; ``str(exc)`` is the reason a user reads in ``micro status``
    (the installer's failing line, or what is missing)."""


PLATFORM_DISTRIBUTION: Final = "micro-python"
"""Our own distribution. The platform provides it, so it is never installed into a
service's venv (an installed copy would shadow the server's own)."""

READY: Final = ".micro-ready"
"""The file that marks a finished venv; a folder without it is never used."""


# --------------------------------------------------------------------------- requirements

_COMMENT: Final = re.compile(r"(^|\s+)#.*$")
_INCLUDE: Final = re.compile(r"^(?:-r|--requirement)(?:=|\s+)?(?P<file>\S.*)$")
_CONSTRAINT: Final = re.compile(r"^(?:-c|--constraint)(?:=|\s+)?(?P<file>\S.*)$")
_NAME: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _normalize(name: str) -> str:
    """PEP 503: case-insensitive, runs of ``-_.`` equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _load_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{label} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read {label}: {exc}") from None


def _read_requirements(path: Path, label: str, seen: set[Path]) -> list[str]:
    """The lines of a requirements file, ``-r`` includes followed relative to it."""
    seen.add(path.resolve())
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read {label}: {exc}") from None
    lines: list[str] = []
    for raw in re.sub(r"\\\r?\n", "", text).splitlines():  # pip joins `\` continuations
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if match := _INCLUDE.match(line):
            name = match["file"].strip()
            included = path.parent / name
            if included.resolve() not in seen:
                lines += _read_requirements(included, f"{name} (included by {label})", seen)
        elif (match := _CONSTRAINT.match(line)) and "://" not in match["file"]:
            # The installer reads a copy of these lines elsewhere, so anchor the file here.
            lines.append(f"-c {(path.parent / match['file'].strip()).absolute()}")
        else:
            lines.append(line)
    return lines


def _is_platform(line: str) -> bool:
    match = None if line.startswith("-") else _NAME.match(line)
    return match is not None and _normalize(match[0]) == PLATFORM_DISTRIBUTION


def requirements(source: Path) -> list[str]:
    """The service's dependencies, as requirement lines for an installer.

    ``[project].dependencies`` of ``pyproject.toml`` when it has them, else the lines of
    ``requirements.txt`` (comments and blank lines dropped, ``-r`` includes followed,
    other options kept), else ``[]``. Requirements of :data:`PLATFORM_DISTRIBUTION`, in
    any spelling, are dropped. BuildError for a malformed file.
    """
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        project = _load_toml(pyproject, "pyproject.toml").get("project")
        if isinstance(project, dict) and "dependencies" in project:
            deps = project["dependencies"]
            if not isinstance(deps, list) or not all(isinstance(dep, str) for dep in deps):
                raise BuildError("pyproject.toml: [project].dependencies is not a list of strings")
            return [dep.strip() for dep in deps if dep.strip() and not _is_platform(dep)]
    listed = source / "requirements.txt"
    if listed.is_file():
        lines = _read_requirements(listed, "requirements.txt", set())
        return [line for line in lines if not _is_platform(line)]
    return []


def _platform_version() -> str:
    try:
        return importlib.metadata.version(PLATFORM_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def build_key(reqs: list[str]) -> str:
    """A 16-hex-digit name for the venv of ``reqs``: the same for the same interpreter
    version, platform version and environment, and set of requirement lines (in any
    order), so services with the same dependencies share a venv."""
    version = sys.version_info
    lines = sorted(line.strip() for line in reqs if line.strip())
    parts = [
        f"{sys.implementation.name} {version.major}.{version.minor}",
        _platform_version(),
        # The venv's .pth names this environment's site-packages: another one needs its own.
        sys.prefix,
        *lines,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- venv


@dataclass(frozen=True, slots=True)
class Build:
    """A ready venv."""

    key: str
    """Its :func:`build_key`, also its folder's name."""
    python: Path
    """Its python executable."""


def _python(env: Path) -> Path:
    return env / "Scripts" / "python.exe" if os.name == "nt" else env / "bin" / "python"


def _find_uv() -> str | None:
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    return str(beside) if beside.is_file() else shutil.which("uv")


class _Shared:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


_building: dict[Path, _Shared] = {}
"""One lock per venv folder being built in this process, dropped when its last user
leaves (so no lock outlives the event loop it was used on)."""


@contextlib.asynccontextmanager
async def _exclusive(path: Path) -> AsyncIterator[None]:
    shared = _building.setdefault(path, _Shared())
    shared.users += 1
    try:
        async with shared.lock:
            yield
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _building[path]


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _failure(lines: list[str], rc: int) -> str:
    """The lines that say why an install failed: pip's ``ERROR:`` or uv's ``error:`` line
    and the few after it (uv's causes), else the last lines printed."""
    for i, line in enumerate(lines):
        if line.startswith(("ERROR:", "error:")):
            picked = lines[i : i + 4]
            break
    else:
        picked = lines[-5:]
    return "\n".join([*picked, f"(exit code {rc})"]) if picked else f"(exit code {rc})"


async def _install(
    command: list[str], *, cwd: Path, log: Callable[[str], None], timeout: float
) -> None:
    """Run the installer, its output lines to ``log`` as they come."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,  # relative paths in requirements mean the service's folder, as for pip
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # so a timeout kills the builds it started too
            limit=1024 * 1024,
        )
    except OSError as exc:
        raise BuildError(f"cannot run {command[0]}: {exc}") from None
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                if line.strip():
                    log(line)
                    lines.append(line.strip())
            rc = await proc.wait()
    except TimeoutError:
        raise BuildError(f"dependency install timed out after {timeout:g}s") from None
    finally:
        if proc.returncode is None:
            _kill(proc)
            await proc.wait()
    if rc != 0:
        raise BuildError(_failure(lines, rc))


def _site_packages(env: Path) -> Path:
    paths = sysconfig.get_paths(scheme="venv", vars={"base": str(env), "platbase": str(env)})
    return Path(paths["purelib"])


def _write_pth(env: Path) -> None:
    """Put this process's site-packages after the venv's own (see the module docstring).
    ``site.addsitedir`` also runs their ``.pth`` files, which is how editable installs
    are found."""
    paths = sysconfig.get_paths()
    dirs = dict.fromkeys([paths["purelib"], paths["platlib"]])
    text = "".join(f"import site; site.addsitedir({path!r})\n" for path in dirs)
    (_site_packages(env) / "_micro_platform.pth").write_text(text, encoding="utf-8")


def _relocate(tmp: Path, final: Path) -> None:
    """Installed scripts' shebangs and the activate scripts name the folder the venv was
    built in; point them at the one it is renamed to."""
    old, new = os.fsencode(tmp), os.fsencode(final)
    for path in [*_python(tmp).parent.iterdir(), tmp / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data and b"\0" not in data:  # text only: a binary would be corrupted
            path.write_bytes(data.replace(old, new))


def _commit(tmp: Path, final: Path) -> None:
    """Rename the finished venv into place; the rename is what makes it visible."""
    try:
        os.rename(tmp, final)
    except OSError:
        if (final / READY).exists():  # another process built the same venv meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            return
        shutil.rmtree(final, ignore_errors=True)  # a leftover that never became ready
        os.rename(tmp, final)


def _venv_dir(venvs: Path, key: str) -> Path:
    """Absolute, so the python path in :class:`Build` works from any working folder."""
    return venvs.absolute() / key


def _ready(env: Path) -> bool:
    """Whether ``env`` is a finished venv: one stat, cheap enough for the event loop."""
    return (env / READY).exists()


async def _build(
    reqs: list[str], source: Path, final: Path, *, log: Callable[[str], None], timeout: float
) -> None:
    tmp = final.parent / f".{final.name}.tmp-{secrets.token_hex(4)}"
    try:
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
        uv = _find_uv() if reqs else None
        log(f"building virtualenv {final.name} ({len(reqs)} requirements)")
        builder = venv.EnvBuilder(with_pip=bool(reqs) and uv is None, symlinks=True)
        await asyncio.to_thread(builder.create, tmp)
        if reqs:
            listed = tmp / "micro-requirements.txt"
            listed.write_text("".join(f"{line}\n" for line in reqs), encoding="utf-8")
            python = str(_python(tmp))
            if uv is not None:
                command = [uv, "pip", "install", "--python", python, "-r", str(listed)]
            else:
                command = [python, "-m", "pip", "install", "--disable-pip-version-check"]
                command += ["--no-input", "-r", str(listed)]
            log(" ".join(command[:3]) + " ...")
            await _install(command, cwd=source, log=log, timeout=timeout)
        # After the install, so the installer sees only the venv's own packages and
        # installs every requirement into it.
        _write_pth(tmp)
        _relocate(tmp, final)
        (tmp / READY).write_text("\n".join(reqs) + "\n", encoding="utf-8")
        _commit(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"virtualenv {final.name} is ready")


async def ensure_venv(
    source: Path,
    venvs: Path,
    *,
    log: Callable[[str], None] = lambda line: None,
    timeout: float = 900.0,
) -> Build:
    """The venv for ``source``'s :func:`requirements`, ``venvs/<key>``, built once.

    A ready venv is returned at once, without running anything. Otherwise it is built in
    a temporary folder (``venvs/.<key>.tmp-*``) that is renamed into place only when
    complete, so a crash never leaves a half venv that looks ready; calls for the same
    venv in this process share one build. Progress and the installer's output go to
    ``log``; its environment is this process's (``PIP_*``/``UV_*`` settings apply).
    BuildError with the installer's failing lines, or "dependency install timed out
    after Ns" (``timeout`` is for the install).
    """
    reqs = requirements(source)
    key = build_key(reqs)
    final = _venv_dir(venvs, key)
    build = Build(key, _python(final))
    if _ready(final):
        return build
    async with _exclusive(final):
        if not _ready(final):
            await _build(reqs, source, final, log=log, timeout=timeout)
    return build


# --------------------------------------------------------------------------- entrypoint


@dataclass(frozen=True, slots=True)
class Entrypoint:
    """How to start a service: ``<venv python> *argv`` run in the source folder."""

    argv: list[str]
    """The arguments after the python executable: ``["main.py"]``, ``["-m", "hello"]``
    or ``["-c", "<code that calls a [project.scripts] function>"]``."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment: ``PYTHONPATH`` for a ``src/`` layout, else empty."""
    description: str = ""
    """For messages: ``main.py``, ``python -m hello``, ``script hello = hello.app:main``."""


def _script(key: str, value: object, env: dict[str, str]) -> Entrypoint:
    reference = value.split("[")[0].strip() if isinstance(value, str) else ""
    module, _, attr = reference.partition(":")
    module, attr = module.strip(), attr.strip()
    if not (
        all(part.isidentifier() for part in module.split("."))
        and all(part.isidentifier() for part in attr.split("."))
    ):
        raise BuildError(f"[project.scripts] {key} = {value!r} is not 'module:function'")
    first, _, rest = attr.partition(".")
    alias = "_entry" if first == "sys" else first
    call = alias + (f".{rest}" if rest else "")
    imported = f"{first} as {alias}" if alias != first else first
    code = f"import sys; from {module} import {imported}; sys.exit({call}())"
    return Entrypoint(["-c", code], env, f"script {key} = {module}:{attr}")


def find_entrypoint(source: Path, *, name: str | None = None) -> Entrypoint:
    """What starts the service in ``source``, in the documented order:

    1. ``main.py`` at its top;
    2. a package with ``__main__.py``, at the top or under ``src/`` (``python -m pkg``):
       the one named like the service (``-`` read as ``_``), else the only one;
    3. a ``[project.scripts]`` entry of ``pyproject.toml``: the one named like the
       service, else the first.

    A ``src/`` folder puts itself on ``PYTHONPATH`` for 2 and 3. BuildError when none
    is found, or several packages and none named like the service.
    """
    if (source / "main.py").is_file():
        return Entrypoint(["main.py"], {}, "main.py")
    src = source / "src"
    env = {"PYTHONPATH": str(src.absolute())} if src.is_dir() else {}
    packages = sorted(
        {
            main.parent.name
            for base in (source, src)
            if base.is_dir()
            for main in base.glob("*/__main__.py")
            if main.parent.name.isidentifier()
        }
    )
    if packages:
        wanted = (name or "").replace("-", "_")
        if wanted in packages:
            chosen = wanted
        elif len(packages) == 1:
            chosen = packages[0]
        else:
            raise BuildError(
                f"several packages with __main__.py in {source.name}: {', '.join(packages)};"
                " name the service after the one to run"
            )
        return Entrypoint(["-m", chosen], env, f"python -m {chosen}")
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        project = _load_toml(pyproject, "pyproject.toml").get("project")
        scripts = project.get("scripts") if isinstance(project, dict) else None
        if isinstance(scripts, dict) and scripts:
            key = name if name is not None and name in scripts else next(iter(scripts))
            return _script(str(key), scripts[key], env)
    raise BuildError(
        "no entrypoint: expected main.py, a package with __main__.py,"
        " or a [project.scripts] entry in pyproject.toml"
    )
