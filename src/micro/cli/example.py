"""``micro example``: the examples shipped inside the package, copied out to run.

An installed ``micro`` (``pipx install micro-python``) has no repository beside it, so the
examples travel in the package (``micro/examples``); this command lists them and copies
one into a folder that ``micro run`` then uploads::

    $ micro example helloworld
    Copied example helloworld to helloworld

    micro run helloworld
    micro get service helloworld
"""

from __future__ import annotations

import shutil
from importlib.resources import as_file, files
from pathlib import Path

import click

from micro.cli.errors import CliError
from micro.cli.main import MicroCommand

__all__ = ["example", "examples"]


def examples() -> dict[str, Path]:
    """The shipped examples by name: each a folder of ``micro/examples``."""
    with as_file(files("micro") / "examples") as root:
        return {p.name: p for p in sorted(Path(root).iterdir()) if (p / "main.py").is_file()}


@click.command("example", cls=MicroCommand)
@click.argument("name", required=False)
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
def example(name: str | None, folder: Path | None) -> None:
    """Copy the example NAME into FOLDER (default: ./NAME); list them without NAME."""
    found = examples()
    if name is None:
        click.echo("\n".join(found))
        return
    if name not in found:
        raise CliError(f"no example {name!r} (there are: {', '.join(found)})", 1)
    target = folder or Path(name)
    if target.exists():
        raise CliError(f"{target} already exists", 1)
    shutil.copytree(found[name], target, ignore=shutil.ignore_patterns("__pycache__"))
    click.echo(f"Copied example {name} to {target}\n")
    click.echo(f"micro run {target}")
    click.echo(f"micro get service {name}")
