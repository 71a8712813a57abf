"""A service's build: the virtualenv of its dependencies.

Virtualenvs live under one folder per namespace, named by :func:`build_key`, so services
with the same dependencies share one and a restart reuses it. The platform itself
(``micro`` and its dependencies) is not installed into them: a ``.pth`` file puts the
platform's own site-packages after the venv's, so a service imports the very ``micro``
the server runs, editable installs included, while its own pinned packages still come
first.

The build itself (:mod:`micro.runtime.builder`) runs in the namespace's sandbox, as its
user: installing runs the packages' own code. The server only reads the requirement
files, never one that leads out of the service's folder (a link to the server's keys
would otherwise print them in an installer's error).
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
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from micro.runtime.builder import READY, python_of
from micro.runtime.sandbox import Place, Sandbox, Shared

__all__ = [
    "PLATFORM_DISTRIBUTION",
    "READY",
    "Build",
    "BuildError",
    "Where",
    "build_key",
    "dependencies",
    "ensure_venv",
    "find_uv",
    "import_root",
    "load_toml",
    "requirements",
]


class BuildError(Exception):
    """A build that failed; ``str(exc)`` is the reason a user reads in ``micro status``
    (the installer's failing line, or what is missing)."""


PLATFORM_DISTRIBUTION: Final = "micro-python"
"""Our own distribution. The platform provides it, so it is never installed into a
service's venv (an installed copy would shadow the server's own)."""

# --------------------------------------------------------------------------- requirements

_COMMENT: Final = re.compile(r"(^|\s+)#.*$")
_INCLUDE: Final = re.compile(r"^(?:-r|--requirement)(?:=|\s+)?(?P<file>\S.*)$")
_CONSTRAINT: Final = re.compile(r"^(?:-c|--constraint)(?:=|\s+)?(?P<file>\S.*)$")
_NAME: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _normalize(name: str) -> str:
    """PEP 503: case-insensitive, runs of ``-_.`` equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_inside(path: Path, root: Path, label: str) -> None:
    """BuildError when ``path`` leads (through ``..`` or a link) out of ``root``."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise BuildError(f"{label} is outside the service's folder")


def load_toml(path: Path, label: str, root: Path) -> dict[str, Any]:
    """A TOML file of the service's folder ``root``; BuildError for a bad one."""
    _check_inside(path, root, label)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{label} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read {label}: {exc}") from None


def _read_requirements(path: Path, label: str, seen: set[Path], root: Path) -> list[str]:
    """The lines of a requirements file, ``-r`` includes followed relative to it."""
    _check_inside(path, root, label)
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
                label_of = f"{name} (included by {label})"
                lines += _read_requirements(included, label_of, seen, root)
        elif (match := _CONSTRAINT.match(line)) and "://" not in match["file"]:
            # The installer reads a copy of these lines elsewhere, so anchor the file here.
            lines.append(f"-c {(path.parent / match['file'].strip()).absolute()}")
        else:
            lines.append(line)
    return lines


def _is_platform(line: str) -> bool:
    match = None if line.startswith("-") else _NAME.match(line)
    return match is not None and _normalize(match[0]) == PLATFORM_DISTRIBUTION


def requirements(source: Path, root: Path | None = None) -> list[str]:
    """The service's dependencies, as requirement lines for an installer.

    ``[project].dependencies`` of ``pyproject.toml`` when it has them, else the lines of
    ``requirements.txt`` (comments and blank lines dropped, ``-r`` includes followed,
    other options kept), else ``[]``. Requirements of :data:`PLATFORM_DISTRIBUTION`, in
    any spelling, are dropped, and so are local packages of the repository (see
    :func:`dependencies`), replaced by their own requirements. BuildError for a malformed
    file, or one outside ``root`` (default ``source``).
    """
    return dependencies(source, root)[0]


_LOCAL: Final = re.compile(r"^(?:-e\s+|--editable(?:=|\s+))?(?:file:)?(?P<path>\.{1,2}(?:/.*)?)$")


def _declared(source: Path, root: Path) -> tuple[list[str], dict[str, str]]:
    """The requirement lines of ``source``, and its ``[tool.uv.sources]`` paths by name."""
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        data = load_toml(pyproject, f"{_label(source, root)}pyproject.toml", root)
        project = data.get("project")
        tool = data.get("tool")
        uv = tool.get("uv") if isinstance(tool, dict) else None
        sources = uv.get("sources") if isinstance(uv, dict) else None
        paths = {
            _normalize(name): str(spec["path"])
            for name, spec in (sources.items() if isinstance(sources, dict) else [])
            if isinstance(spec, dict) and isinstance(spec.get("path"), str)
        }
        if isinstance(project, dict) and "dependencies" in project:
            deps = project["dependencies"]
            if not isinstance(deps, list) or not all(isinstance(dep, str) for dep in deps):
                raise BuildError("pyproject.toml: [project].dependencies is not a list of strings")
            return [dep.strip() for dep in deps if dep.strip()], paths
    listed = source / "requirements.txt"
    if listed.is_file():
        label = f"{_label(source, root)}requirements.txt"
        return _read_requirements(listed, label, set(), root), {}
    return [], {}


def _label(source: Path, root: Path) -> str:
    relative = source.resolve().relative_to(root.resolve()).as_posix()
    return "" if relative == "." else f"{relative}/"


def import_root(package: Path) -> Path:
    """Where a local package's modules are imported from: its ``src/``, else itself."""
    return package / "src" if (package / "src").is_dir() else package


def dependencies(source: Path, root: Path | None = None) -> tuple[list[str], list[Path]]:
    """The service's requirement lines (see :func:`requirements`) and the folders of the
    local packages it depends on.

    A local package is a requirement that is a path (``../shared``, ``-e ../shared``,
    ``file:../shared`` in requirements.txt; a ``[tool.uv.sources]`` entry with a
    ``path`` in pyproject.toml) inside the repository ``root``. It is not installed: its
    folder (or its ``src/``, :func:`import_root`) goes on the service's ``PYTHONPATH``, so it is imported from
    the very checkout the service runs (an update of shared code needs no rebuild), and
    its own requirements join the service's. BuildError for a path outside ``root``.
    """
    root = root or source
    lines: list[str] = []
    packages: list[Path] = []
    seen: set[Path] = set()

    def visit(folder: Path) -> None:
        seen.add(folder.resolve())
        declared, paths = _declared(folder, root)
        for line in declared:
            match = _LOCAL.match(line)
            name = None if line.startswith("-") else _NAME.match(line)
            path = match["path"] if match else (paths.get(_normalize(name[0])) if name else None)
            if path is None:
                if not _is_platform(line):
                    lines.append(line)
                continue
            package = (folder / path).resolve()
            if package == source.resolve():  # the service itself (``-e .``): installed
                lines.append(line)
                continue
            _check_inside(package, root, f"local package {path}")
            if not package.is_dir():
                raise BuildError(f"local package {path} is not a folder of the repository")
            if package not in seen:
                packages.append(package)
                visit(package)

    visit(source)
    return lines, packages


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


def find_uv() -> str | None:
    """The uv to install with: beside this interpreter, else on PATH."""
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


async def _run_builder(
    proc: asyncio.subprocess.Process, *, log: Callable[[str], None], timeout: float
) -> None:
    """Follow the builder, its output lines to ``log`` as they come."""
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
            _kill(proc)  # its whole process group: the installer and its builds too
            await proc.wait()
    if rc != 0:
        raise BuildError(_failure(lines, rc))


def _relocate(tmp: Path, final: Path) -> None:
    """Installed scripts' shebangs and the activate scripts name the folder the venv was
    built in; point them at the one it is renamed to."""
    old, new = os.fsencode(tmp), os.fsencode(final)
    for path in [*python_of(tmp).parent.iterdir(), tmp / "pyvenv.cfg"]:
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


def _write_requirements(path: Path, reqs: list[str], source: Path, seen_as: Path) -> None:
    """The installer's requirements file; constraint files anchored in the source folder
    are named as the builder sees that folder."""
    text = "".join(f"{line}\n" for line in reqs)
    path.write_text(text.replace(f" {source.absolute()}/", f" {seen_as}/"), encoding="utf-8")


def _builder_env() -> dict[str, str]:
    """The server's environment without its own ``MICRO_*`` settings (its passwords and
    backends' addresses are not the packages' business); ``PIP_*``/``UV_*`` apply."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}


@dataclass(frozen=True, slots=True)
class Where:
    """Where a build runs: the sandbox and namespace, and the home of its installers."""

    sandbox: Sandbox
    namespace: str = "micro"
    home: Path | None = None
    """The installers' cache (default: in the venv being built)."""


async def _build(
    reqs: list[str],
    source: Path,
    final: Path,
    *,
    root: Path,
    where: Where,
    log: Callable[[str], None],
    timeout: float,
) -> None:
    tmp = final.parent / f".{final.name}.tmp-{secrets.token_hex(4)}"
    sandbox, namespace = where.sandbox, where.namespace
    try:
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(tmp.mkdir, mode=0o755)
        folder = source.relative_to(root).as_posix() if source != root else ""
        place = Place(app=root, home=where.home or tmp, venv=tmp, build=True, folder=folder)
        seen = sandbox.seen(place)
        uv = find_uv() if reqs else None
        log(f"building virtualenv {final.name} ({len(reqs)} requirements)")
        argv = [sys.executable, "-I", "-m", "micro.runtime.builder", str(seen.venv)]
        if reqs:
            listed = tmp / "micro-requirements.txt"
            await asyncio.to_thread(_write_requirements, listed, reqs, source, seen.cwd)
            argv += ["--requirements", str(seen.venv / "micro-requirements.txt")]
        if uv is not None:
            argv += ["--uv", uv]
        await sandbox.hand_over(namespace, tmp, tree=True)
        if where.home is not None:
            await sandbox.hand_over(namespace, where.home)
        proc = await sandbox.spawn(namespace, place, argv, _builder_env())
        await _run_builder(proc, log=log, timeout=timeout)
        if seen.venv != final:
            _relocate(tmp, final)
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
    where: Where | None = None,
    root: Path | None = None,
) -> Build:
    """The venv for ``source``'s :func:`requirements`, ``venvs/<key>``, built once.

    A ready venv is returned at once, without running anything. Otherwise it is built in
    a temporary folder (``venvs/.<key>.tmp-*``) that is renamed into place only when
    complete, so a crash never leaves a half venv that looks ready; calls for the same
    venv in this process share one build. The build runs ``where`` says (default: as
    this process, unconfined). Progress and the installer's output go to ``log``; its
    environment is this process's without ``MICRO_*`` (``PIP_*``/``UV_*`` settings
    apply). BuildError with the installer's failing lines, or "dependency install timed
    out after Ns" (``timeout`` is for the whole build). ``root`` is the repository
    ``source`` is a folder of (default: ``source`` itself): the build sees all of it.
    """
    root = root or source
    reqs = requirements(source, root)
    key = build_key(reqs)
    final = _venv_dir(venvs, key)
    build = Build(key, python_of(final))
    if _ready(final):
        return build
    async with _exclusive(final):
        if not _ready(final):
            where = where or Where(Shared(insecure=True))
            await _build(reqs, source, final, root=root, where=where, log=log, timeout=timeout)
    return build
