"""MkDocs hooks: the parts of the documentation made from the code.

``<!-- settings-table -->`` in a page becomes the table of every ``MICRO_*`` setting:
its variable, the flag of ``micro server`` that sets it, its default and what it means,
read from :mod:`micro.settings` (the ``Settings`` fields, their docstrings and how
``load`` reads each one) and from the flags' help. A variable some other module reads
directly is listed too, so the table names every setting in ``src/``.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "micro"
_VAR = re.compile(r"MICRO_[A-Z0-9_]+")
MARKER = "<!-- settings-table -->"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Put the generated table where a page asks for it."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, table())
    return markdown


_ROLE = re.compile(r":(?:meth|func|class|mod|data|attr|exc|obj):(?=<code)")


def on_page_content(html: str, **_: Any) -> str:
    """Drop the Sphinx roles of docstrings (``:meth:`run```) that mkdocstrings leaves in
    front of the code they mark."""
    return _ROLE.sub("", html)


def rows() -> list[tuple[str, str, str, str]]:
    """(variable, flag, default, meaning) for every setting, in ``Settings``' order."""
    from micro.cli.server import server
    from micro.settings import Settings

    tree = ast.parse((SRC / "settings.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    docs = _field_docs(tree)
    flags = {p.envvar: f"--{p.name}" for p in server.params if isinstance(p.envvar, str)}
    helps = {p.envvar: getattr(p, "help", "") or "" for p in server.params}
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    found: list[tuple[str, str, str, str]] = []
    for field, value in _load_keywords(functions["load"]):
        for var in _variables(value, functions):
            naming = [doc for doc in docs.values() if f"``{var}``" in doc]
            meaning = docs.get(field) or (naming[0] if naming else "") or helps.get(var, "")
            meaning = re.sub(r"^(``MICRO_[A-Z0-9_]+``(, | and )?)+: ?", "", meaning)
            found.append((var, flags.get(var, ""), _default(defaults.get(field)), meaning))
    listed = {row[0] for row in found}
    for var, module in sorted(_read_elsewhere().items()):
        if var not in listed:
            found.append((var, flags.get(var, ""), "", f"Read by `{module}`: {_about(var)}"))
    return found


def table() -> str:
    """The rows as a Markdown table."""
    lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for var, flag, default, meaning in rows():
        flag_text = f"`{flag}`" if flag else ""
        default_text = f"`{default}`" if default else ""
        text = _markdown(" ".join(meaning.replace("|", "\\|").split()))
        lines.append(f"| `{var}` | {flag_text} | {default_text} | {text} |")
    return "\n".join(lines)


def _markdown(text: str) -> str:
    """Docstring markup as Markdown: ``x`` and :role:`x` as code, a capital first."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text.replace("``", "`"))
    return text[:1].upper() + text[1:]


def _field_docs(tree: ast.Module) -> dict[str, str]:
    """The docstring under each field of ``Settings``."""
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    docs: dict[str, str] = {}
    body = cls.body
    for node, after in zip(body, [*body[1:], None], strict=True):
        documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and documented:
            docs[node.target.id] = str(after.value.value)  # type: ignore[union-attr]
    return docs


def _load_keywords(load: ast.FunctionDef) -> list[tuple[str, ast.expr]]:
    [call] = [
        n
        for n in ast.walk(load)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Settings"
    ]
    return [(kw.arg, kw.value) for kw in call.keywords if kw.arg]


def _variables(value: ast.expr, functions: dict[str, ast.FunctionDef]) -> list[str]:
    """The variables an expression of ``load`` reads, looking into the helper it calls."""
    names = [n.value for n in ast.walk(value) if isinstance(n, ast.Constant)]
    found = [v for v in names if isinstance(v, str) and _VAR.fullmatch(v)]
    if not found:
        for node in ast.walk(value):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in functions:
                helper = functions[node.func.id]  # type: ignore[attr-defined]
                found += [
                    n.value
                    for n in ast.walk(helper)
                    if isinstance(n, ast.Constant)
                    and isinstance(n.value, str)
                    and _VAR.fullmatch(n.value)
                ]
    return list(dict.fromkeys(found))


def _default(value: Any) -> str:
    if value is None or value is dataclasses.MISSING or value in ((), ""):
        return "~/.micro" if value is dataclasses.MISSING else ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_elsewhere() -> dict[str, str]:
    """Variables read outside ``settings.py``, with the module that reads each."""
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "settings.py":
            continue
        for var in re.findall(r'"(MICRO_[A-Z0-9_]+)"', path.read_text()):
            module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
            found.setdefault(var, module)
    return found


def _about(var: str) -> str:
    """What the module reading ``var`` says of it: the sentence of its docstrings naming it."""
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if f'"{var}"' not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            doc = (
                ast.get_docstring(node)
                if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
                else None
            )
            for sentence in re.split(r"(?<=\.)\s+", " ".join((doc or "").split())):
                if var in sentence:
                    return sentence
    return ""
