"""``micro new <name>``: a new service project in a new folder, ready to run and to test.

Micro's ``micro new`` (reference §7.1) writes a Go service from templates and prints the
tree it made. Ours writes the Python equivalent from the text templates shipped in
``micro/templates/service``: a handler with helloworld's three endpoints (``Call``,
``Stream``, ``PingPong``), the ``main.py`` that serves it, tests that run it against a
real server through the ``micro.testing`` plugin, a ``pyproject.toml``, a README and a
``.gitignore``::

    $ micro new hello
    Creating service hello

    .
    ├── main.py
    ├── handler.py
    ├── tests
    │   ├── conftest.py
    │   └── test_hello.py
    ├── pyproject.toml
    ├── README.md
    └── .gitignore

    cd hello
    micro run .
    micro call hello Hello.Call '{"name":"John"}'

NAME may be a relative path (``services/hello``); its last part names the service. The
templates use ``string.Template`` (``$lower``, ``$title``), whose ``$`` never clashes with
the braces of Python and TOML. Everything is checked before anything is written, and a
failed write removes the folder again: a mistake leaves nothing behind.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import TypeAlias

import click

from micro.cli.errors import CliError
from micro.cli.main import MicroCommand

__all__ = ["FILES", "Names", "new", "render", "tree"]

FILES: tuple[tuple[str, str], ...] = (
    ("main.py", "main.py.tmpl"),
    ("handler.py", "handler.py.tmpl"),
    ("tests/conftest.py", "tests/conftest.py.tmpl"),
    ("tests/test_$snake.py", "tests/test_handler.py.tmpl"),
    ("pyproject.toml", "pyproject.toml.tmpl"),
    ("README.md", "README.md.tmpl"),
    (".gitignore", "gitignore.tmpl"),
)
"""What a new service holds, in the order it is written and shown: (file, template).
File names are templates too: the test module is named after the service
(``tests/test_hello_world.py``), so the tests of several services run in one pytest
session without two modules of the same name.
Templates are not named ``*.py``/``.gitignore`` so that neither the linters and tests of
this project nor git take them for the real thing."""

# Lower-case words joined by single hyphens: a name the registry, a PyPI project and the
# handler's class name (hyphens dropped) all accept.
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class Names:
    """The forms of a service's name the templates use, as Micro's do."""

    lower: str
    """The service's name: ``hello-world``."""
    title: str
    """Its handler class: words capitalised, hyphens dropped: ``HelloWorld``."""
    snake: str = ""
    """As a Python identifier: ``hello_world``."""

    @classmethod
    def of(cls, name: str) -> Names:
        """The forms of ``name``; ``ValueError`` unless, lower-cased, it is letters and
        digits in words joined by single hyphens, starting with a letter."""
        lower = name.lower()
        if not _NAME.fullmatch(lower):
            raise ValueError(
                f"Invalid service name {name!r}: use letters, digits and single hyphens, "
                "starting with a letter (e.g. hello-world)"
            )
        title = "".join(word[:1].upper() + word[1:] for word in lower.split("-"))
        return cls(lower=lower, title=title, snake=lower.replace("-", "_"))


def _template(name: str) -> str:
    return files("micro").joinpath("templates", "service", name).read_text(encoding="utf-8")


def render(names: Names) -> dict[str, str]:
    """The new service's files (path relative to its folder -> text), in :data:`FILES` order."""
    mapping = {"lower": names.lower, "title": names.title, "snake": names.snake}
    return {
        Template(path).substitute(mapping): Template(_template(source)).substitute(mapping)
        for path, source in FILES
    }


_Tree: TypeAlias = dict[str, "_Tree"]
"""A folder: its entries by name, in the order they came; a file is an empty folder."""


def tree(paths: list[str]) -> list[str]:
    """Lines drawing ``paths`` (relative, ``/``-separated) as ``tree`` does, from ``.``;
    each folder shown where its first file comes, its files under it in order."""
    root: _Tree = {}
    for path in paths:
        node = root
        for part in path.split("/"):
            node = node.setdefault(part, {})

    lines = ["."]

    def draw(node: _Tree, prefix: str) -> None:
        for i, (name, children) in enumerate(node.items()):
            last = i == len(node) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{name}")
            draw(children, prefix + ("    " if last else "│   "))

    draw(root, "")
    return lines


def _target(name: str) -> tuple[Path, Names]:
    """The folder to create for NAME and the service's names; a :class:`CliError` (exit 1,
    Micro's code for bad input) when NAME cannot make a new service."""
    if not name.strip():
        raise CliError("Specify service name", 1)
    directory = Path(name)
    if directory.is_absolute():
        raise CliError("Require a relative path: the service is created in the current folder", 1)
    try:
        names = Names.of(directory.name or name)
    except ValueError as exc:
        raise CliError(str(exc), 1) from None
    if directory.exists() or directory.is_symlink():
        raise CliError(f"{directory} already exists", 1)
    return directory, names


def _write(directory: Path, contents: dict[str, str]) -> None:
    """Create ``directory`` with ``contents``; on failure remove it again."""
    try:
        directory.mkdir(parents=True)
    except FileExistsError:  # made since _target looked
        raise CliError(f"{directory} already exists", 1) from None
    except OSError as exc:
        raise CliError(f"Cannot create {directory}: {exc.strerror or exc}", 1) from None
    try:
        for path, text in contents.items():
            file = directory / path
            file.parent.mkdir(exist_ok=True)
            file.write_text(text, encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise CliError(f"Cannot create {directory}: {exc.strerror or exc}", 1) from None


@click.command("new", cls=MicroCommand)
@click.argument("name", required=False, default="")
def new(name: str) -> None:
    """Create a new service project from a template.

    NAME is the service's name (letters, digits and hyphens; used lower-cased), or a
    relative path whose last part is the name (services/hello). The folder must not exist
    yet.
    """
    directory, names = _target(name)
    contents = render(names)
    _write(directory, contents)
    folder = shlex.quote(str(directory))
    lines = [
        f"Creating service {names.lower}",
        "",
        *tree(list(contents)),
        "",
        f"cd {folder}",
        "micro run .",
        f'micro call {names.lower} {names.title}.Call \'{{"name":"John"}}\'',
    ]
    click.echo("\n".join(lines))
