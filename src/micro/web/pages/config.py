"""Config: the namespace's config tree as dotted paths and values; setting and deleting a
path. Through the ``config`` service as the logged-in account, which must administer the
namespace.

Secrets never reach the browser: the tree is read without ``options.secret``, so the
service itself answers ``"[secret]"`` in their place, and every path it names in
``secrets`` is shown as a mask whatever the data says. A secret's value is only ever
sent one way, in the form that sets it, and never put back into a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from micro import errors
from micro.web.app import Context, page

__all__ = ["MASK", "ROUTES", "Leaf", "flatten"]

MASK: Final = "••••••"
"""What a secret shows as."""
_WHERE: Final = "micro.web"


@dataclass(frozen=True, slots=True)
class Leaf:
    """One row of the config table: a dotted path, its value as text, and its kind."""

    path: str
    text: str
    kind: str
    """``string``, ``number``, ``boolean``, ``array``, ``object`` (an empty one), ``null``
    or ``secret``."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def flatten(data: Any, secrets: frozenset[str], path: str = "") -> list[Leaf]:
    """The leaves of a tree, sorted by path: a string as it is, anything else as compact
    JSON (``micro config get``'s rendering), a secret as :data:`MASK`."""
    if path in secrets:
        return [Leaf(path, MASK, "secret")]
    if isinstance(data, dict) and data:
        leaves: list[Leaf] = []
        for key in sorted(data):
            leaves += flatten(data[key], secrets, f"{path}.{key}" if path else key)
        return leaves
    if data is None and not path:
        return []  # an empty tree
    text = data if isinstance(data, str) else msgspec.json.encode(data).decode()
    return [Leaf(path, text, _kind(data))]


async def _page(
    context: Context, *, status: int = 200, error: str = "", form: dict[str, str] | None = None
) -> Response:
    answer = await context.caller.call("config", "Config.Get", {"path": ""})
    value = answer.get("value") or {}
    data = msgspec.json.decode(value.get("data") or "null")
    leaves = flatten(data, frozenset(value.get("secrets") or []))
    return context.render(
        "config.html",
        status,
        leaves=leaves,
        revision=value.get("revision", 0),
        error=error,
        form=form or {},
    )


async def tree(context: Context) -> Response:
    """``/config``: the tree, and the forms."""
    return await _page(context)


def _path(form: Any) -> str:
    path = str(form.get("path", "")).strip()
    if not path:
        raise errors.BadRequest(_WHERE, "a path is needed (e.g. db.host)")
    return path


def _json(form: Any) -> str:
    """The value typed, as JSON text: parsed as JSON (``json``), taken as a string
    (``text``), or JSON when it parses and a string otherwise (``auto``, as the CLI)."""
    text = str(form.get("value", ""))
    kind = str(form.get("as", "auto"))
    if kind != "text":
        try:
            return msgspec.json.encode(msgspec.json.decode(text)).decode()
        except msgspec.DecodeError as exc:
            if kind == "json":
                raise errors.BadRequest(_WHERE, f"the value is not JSON: {exc}") from None
    return msgspec.json.encode(text).decode()


async def set_value(context: Context) -> Response:
    """``POST /config/set``: store a value at a path (objects merge), encrypted when
    secret. Bad input is said on the form, which keeps what was typed but a secret."""
    form = await context.request.form()
    secret = form.get("secret") == "on"
    try:
        await context.caller.call(
            "config",
            "Config.Set",
            {
                "path": _path(form),
                "value": {"data": _json(form)},
                "options": {"secret": secret},
            },
        )
    except errors.BadRequest as exc:
        shown = {
            "path": str(form.get("path", "")),
            "value": "" if secret else str(form.get("value", "")),
            "as": str(form.get("as", "auto")),
        }
        return await _page(context, status=exc.code, error=exc.detail, form=shown)
    return RedirectResponse("/config", status_code=303)


async def delete(context: Context) -> Response:
    """``POST /config/delete``: remove a path and everything under it."""
    form = await context.request.form()
    try:
        await context.caller.call("config", "Config.Delete", {"path": _path(form)})
    except errors.BadRequest as exc:
        return await _page(context, status=exc.code, error=exc.detail)
    return RedirectResponse("/config", status_code=303)


ROUTES = [
    Route("/config", page(tree)),
    Route("/config/set", page(set_value), methods=["POST"]),
    Route("/config/delete", page(delete), methods=["POST"]),
]
