"""The stored form of a config tree, and Micro's rules for changing it.

A tree is a JSON object. Every leaf is stored as Micro stores it::

    {"value": "<the leaf's JSON text>", "leaf": true}                 # plain
    {"value": "<sealed JSON text>", "leaf": true, "secret": true}     # secret

and every other node is an object of children. Objects written by users are taken apart
into such nodes, so a stored node is a leaf exactly when its ``"leaf"`` is the JSON
``true`` (an inner node's children are always objects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeGuard

import msgspec

from micro import errors
from micro.config.base import SECRET_MASK

__all__ = ["Node", "encode", "find", "is_leaf", "put", "remove", "render"]

Node = dict[str, Any]

Seal = Callable[[bytes], str]
"""Encrypts a leaf's JSON text into the string stored in its ``value``."""

Reveal = Callable[[str, str], bytes]
"""Decrypts a stored secret (sealed text, its dotted path) back to its JSON text."""

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def is_leaf(node: Any) -> bool:
    """True for a stored leaf."""
    return isinstance(node, dict) and node.get("leaf") is True


def _inner(node: Any) -> TypeGuard[Node]:
    return isinstance(node, dict) and node.get("leaf") is not True


def encode(value: Any, seal: Seal | None) -> Any:
    """The stored form of plain JSON ``value``: objects as inner nodes, anything else as
    one leaf, sealed (secret) when ``seal`` is given."""
    if isinstance(value, dict):
        return {str(k): encode(v, seal) for k, v in value.items()}
    text = _encode(value)
    if seal is None:
        return {"value": text.decode(), "leaf": True}
    return {"value": seal(text), "leaf": True, "secret": True}


def find(tree: Node, parts: tuple[str, ...]) -> Any:
    """The stored node at ``parts``, or ``None``."""
    node: Any = tree
    for part in parts:
        if not _inner(node):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def put(tree: Node, parts: tuple[str, ...], node: Any) -> None:
    """Write the stored ``node`` at ``parts``: objects merge deeply into objects, anything
    else replaces; non-objects on the way are replaced by objects."""
    if not parts:
        if not _inner(node):
            raise errors.BadRequest("config", "the root of a config tree can only be an object")
        _merge(tree, node)
        return
    parent = tree
    for part in parts[:-1]:
        child = parent.get(part)
        if not _inner(child):
            child = parent[part] = {}
        parent = child
    last = parts[-1]
    existing = parent.get(last)
    if _inner(node) and _inner(existing):
        _merge(existing, node)
    else:
        parent[last] = node


def _merge(into: Node, node: Node) -> None:
    for key, child in node.items():
        existing = into.get(key)
        if _inner(child) and _inner(existing):
            _merge(existing, child)
        else:
            into[key] = child


def remove(tree: Node, parts: tuple[str, ...]) -> bool:
    """Remove the node at ``parts`` (the root: everything); True if something went."""
    if not parts:
        had = bool(tree)
        tree.clear()
        return had
    parent = find(tree, parts[:-1])
    if not _inner(parent) or parts[-1] not in parent:
        return False
    del parent[parts[-1]]
    return True


def render(node: Any, path: str, reveal: Reveal | None) -> tuple[Any, list[str]]:
    """The plain value of a stored node and the relative paths of its secret leaves.

    Secrets are decrypted with ``reveal``, or shown as ``"[secret]"`` without it. A leaf
    whose text is not JSON is reported as corrupt, never returned half-read.
    """
    secrets: list[str] = []
    value = _render(node, path, "", reveal, secrets)
    return value, secrets


def _render(node: Any, path: str, rel: str, reveal: Reveal | None, secrets: list[str]) -> Any:
    if node is None:
        return None
    if not isinstance(node, dict):
        raise _corrupt(path)
    if not is_leaf(node):
        out = {}
        for key, child in node.items():
            sub = f"{rel}.{key}" if rel else key
            full = f"{path}.{key}" if path else key
            out[key] = _render(child, full, sub, reveal, secrets)
        return out
    stored = node.get("value")
    if not isinstance(stored, str):
        raise _corrupt(path)
    if node.get("secret") is True:
        secrets.append(rel)
        if reveal is None:
            return SECRET_MASK
        text = reveal(stored, path)
    else:
        text = stored.encode()
    try:
        return _decode(text)
    except msgspec.DecodeError:
        raise _corrupt(path) from None


def _corrupt(path: str) -> errors.MicroError:
    return errors.InternalServerError(
        "config", f"the stored config is corrupt at {path or 'the root'!r}"
    )
