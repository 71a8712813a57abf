"""What starts a service: ``main.py``, a package's ``__main__``, or a ``[project.scripts]``
entry, found in its folder (:func:`find_entrypoint`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from micro.runtime.build import BuildError, load_toml

__all__ = ["Entrypoint", "find_entrypoint"]


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


def find_entrypoint(
    source: Path, *, name: str | None = None, seen_as: Path | None = None
) -> Entrypoint:
    """What starts the service in ``source``, in the documented order:

    1. ``main.py`` at its top;
    2. a package with ``__main__.py``, at the top or under ``src/`` (``python -m pkg``):
       the one named like the service (``-`` read as ``_``), else the only one;
    3. a ``[project.scripts]`` entry of ``pyproject.toml``: the one named like the
       service, else the first.

    A ``src/`` folder puts itself on ``PYTHONPATH`` for 2 and 3 (as the process sees the
    folder: at ``seen_as``, when given). BuildError when none is found, or several
    packages and none named like the service.
    """
    if (source / "main.py").is_file():
        return Entrypoint(["main.py"], {}, "main.py")
    src = source / "src"
    env = {"PYTHONPATH": str((seen_as or source.absolute()) / "src")} if src.is_dir() else {}
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
        project = load_toml(pyproject, "pyproject.toml", source).get("project")
        scripts = project.get("scripts") if isinstance(project, dict) else None
        if isinstance(scripts, dict) and scripts:
            key = name if name is not None and name in scripts else next(iter(scripts))
            return _script(str(key), scripts[key], env)
    raise BuildError(
        "no entrypoint: expected main.py, a package with __main__.py,"
        " or a [project.scripts] entry in pyproject.toml"
    )
