"""JSON Schemas of endpoint requests and responses, derived from type hints.

One schema per endpoint drives validation (by msgspec, in the codec), the gateway's
OpenAPI document, the CLI's flags and the dashboard's forms. Every type msgspec knows
(Structs, dataclasses, TypedDicts, builtins) gets msgspec's own schema; pydantic models
give theirs. Each schema is self-contained (its ``$defs`` inline) so it can be published
on its own in the registry.
"""

from __future__ import annotations

from typing import Any

import msgspec

from micro.codec import is_pydantic_model

__all__ = ["schema_for"]

_cache: dict[Any, dict[str, Any]] = {}


def schema_for(tp: Any) -> dict[str, Any]:
    """The JSON Schema of ``tp`` (``{}`` for ``Any`` or no annotation)."""
    if tp is Any or tp is None or tp is type(None):
        return {}
    cached = _cache.get(tp)
    if cached is not None:
        return cached
    if is_pydantic_model(tp):
        schema: dict[str, Any] = tp.model_json_schema(ref_template="#/$defs/{model}")
    else:
        schema = msgspec.json.schema(tp)
    schema = _inline_root(schema)
    _cache[tp] = schema
    return schema


def _inline_root(schema: dict[str, Any]) -> dict[str, Any]:
    """Put the root ``$ref``'s definition at the top so readers see fields without a lookup."""
    ref = schema.get("$ref")
    defs = schema.get("$defs", {})
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return schema
    name = ref.removeprefix("#/$defs/")
    root = dict(defs.get(name, {}))
    others = {k: v for k, v in defs.items() if k != name or _refers_to(defs, name)}
    if others:
        root["$defs"] = others
    return root


def _refers_to(defs: dict[str, Any], name: str) -> bool:
    """True when some definition (the root's own included) refers back to ``name``."""
    needle = f'"#/$defs/{name}"'
    return needle in msgspec.json.encode(defs).decode()
