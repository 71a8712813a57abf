"""JSON Schemas of endpoint requests and responses, derived from type hints.

One schema per endpoint drives validation (by msgspec, in the codec), the gateway's
OpenAPI document, the CLI's flags and the dashboard's forms. Every type msgspec knows
(Structs, dataclasses, TypedDicts, builtins) gets msgspec's own schema; pydantic models
give theirs; protobuf messages get one drawn from their descriptor, in the shape
``json_format`` reads and writes (proto field names), marked ``"x-protobuf": <full name>``.
Each schema is self-contained (its ``$defs`` inline) so it can be published on its own in
the registry.
"""

from __future__ import annotations

from typing import Any

import msgspec

from micro.codec import is_protobuf_message, is_pydantic_model

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
    elif is_protobuf_message(tp):
        schema = _ProtobufSchema().message(tp.DESCRIPTOR, root=True)
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


# -- protobuf -------------------------------------------------------------------------------
# Field type numbers of google.protobuf.descriptor.FieldDescriptor (stable across releases),
# so that drawing a schema needs no protobuf import of its own.
_PB_SCALARS: dict[int, dict[str, Any]] = {
    1: {"type": "number"},  # double
    2: {"type": "number"},  # float
    3: {"type": "integer", "format": "int64"},  # int64 (JSON strings accepted too)
    4: {"type": "integer", "format": "uint64", "minimum": 0},  # uint64
    5: {"type": "integer", "format": "int32"},  # int32
    6: {"type": "integer", "format": "uint64", "minimum": 0},  # fixed64
    7: {"type": "integer", "format": "uint32", "minimum": 0},  # fixed32
    8: {"type": "boolean"},  # bool
    9: {"type": "string"},  # string
    12: {"type": "string", "contentEncoding": "base64"},  # bytes
    13: {"type": "integer", "format": "uint32", "minimum": 0},  # uint32
    15: {"type": "integer", "format": "int32"},  # sfixed32
    16: {"type": "integer", "format": "int64"},  # sfixed64
    17: {"type": "integer", "format": "int32"},  # sint32
    18: {"type": "integer", "format": "int64"},  # sint64
}
_PB_ENUM = 14
_PB_REPEATED = 3  # FieldDescriptor.LABEL_REPEATED, for releases without ``is_repeated``

# Well-known types have JSON forms of their own in json_format.
_PB_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": {"type": "object"},
    "google.protobuf.Empty": {"type": "object", "properties": {}},
}
_PB_WRAPPERS: dict[str, int] = {
    "google.protobuf.DoubleValue": 1,
    "google.protobuf.FloatValue": 2,
    "google.protobuf.Int64Value": 3,
    "google.protobuf.UInt64Value": 4,
    "google.protobuf.Int32Value": 5,
    "google.protobuf.UInt32Value": 13,
    "google.protobuf.BoolValue": 8,
    "google.protobuf.StringValue": 9,
    "google.protobuf.BytesValue": 12,
}


class _ProtobufSchema:
    """Draws one message's schema: nested messages inline, except a message that contains
    itself, which is put in ``$defs`` (under its full name) and referred to."""

    def __init__(self) -> None:
        self._open: list[str] = []
        self._defs: dict[str, dict[str, Any]] = {}
        self._recursive: set[str] = set()

    def message(self, desc: Any, *, root: bool = False) -> dict[str, Any]:
        name: str = desc.full_name
        if name in _PB_WELL_KNOWN:
            return dict(_PB_WELL_KNOWN[name])
        if name in _PB_WRAPPERS:
            return dict(_PB_SCALARS[_PB_WRAPPERS[name]])
        if name in self._open:
            self._recursive.add(name)
            return {"$ref": f"#/$defs/{name}"}
        self._open.append(name)
        props = {field.name: self._field(field) for field in desc.fields}
        self._open.pop()
        schema: dict[str, Any] = {"title": desc.name, "type": "object", "properties": props}
        if name in self._recursive:
            self._defs[name] = schema
            schema = {"$ref": f"#/$defs/{name}"}
        if root:
            if schema.get("$ref"):
                schema = dict(self._defs[name])
            # Tells readers (the gRPC edge, gateways) that bodies may be this message's binary form.
            schema["x-protobuf"] = name
            if self._defs:
                schema["$defs"] = self._defs
        return schema

    def _field(self, field: Any) -> dict[str, Any]:
        msg = field.message_type
        if msg is not None and msg.GetOptions().map_entry:
            value = self._single(msg.fields_by_name["value"])
            return {"type": "object", "additionalProperties": value}
        one = self._single(field)
        if _repeated(field):
            return {"type": "array", "items": one}
        return one

    def _single(self, field: Any) -> dict[str, Any]:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.type == _PB_ENUM:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        return dict(_PB_SCALARS.get(field.type, {}))


def _repeated(field: Any) -> bool:
    """True for a repeated field (``is_repeated`` in new protobuf releases, ``label`` before)."""
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        return bool(field.label == _PB_REPEATED)
    return bool(repeated)
