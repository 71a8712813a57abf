"""Python types from JSON Schemas: ``msgspec.Struct`` classes a typed client sends and gets.

The schemas are the ones endpoints publish in the registry (msgspec's, pydantic's, or one
drawn from a protobuf descriptor; see :mod:`micro.rpc.schema`), each self-contained with
its ``$defs``. :class:`TypeWriter` turns any number of them into one module's definitions:

* an object with ``properties`` becomes a ``Struct`` (``kw_only``, so required and
  optional fields may come in any order), named by its ``title`` or ``$defs`` key;
* a field that is not required gets its default when the schema gives a plain one, else
  ``msgspec.UNSET``, which is left out when sent: the server then applies its own default
  instead of receiving a ``null`` its type may refuse;
* ``enum``/``const`` become ``Literal``, ``anyOf``/``oneOf`` unions, arrays ``list`` (or
  ``tuple`` for ``prefixItems``), maps ``dict[str, T]``, and anything unknown ``Any``.

The same name met twice with different schemas (two services' ``Request``) gets a number:
every definition keeps its own fields.
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any

__all__ = ["TypeWriter", "identifier"]

_RESERVED = frozenset(
    {"Any", "Literal", "msgspec", "micro", "asyncio", "datetime", "uuid", "UNSET", "UnsetType"}
    | {"AsyncIterable", "AsyncIterator", "SERVICE", "annotations"}
)
"""Names the generated module imports or defines itself: a type never takes one."""

_STRING_FORMATS = {
    "date-time": "datetime.datetime",
    "date": "datetime.date",
    "time": "datetime.time",
    "uuid": "uuid.UUID",
}


def identifier(text: str, *, reserved: frozenset[str] = frozenset()) -> str:
    """``text`` as a Python identifier: other characters become ``_``; a keyword, a leading
    digit or a reserved name gets an ``_`` too."""
    name = re.sub(r"\W", "_", text) or "_"
    if name[0].isdigit():
        name = "_" + name
    while keyword.iskeyword(name) or name in reserved:
        name += "_"
    return name


class TypeWriter:
    """Collects the definitions the schemas given to :meth:`annotation` need."""

    def __init__(self, *, reserved: frozenset[str] = frozenset()) -> None:
        self.definitions: list[str] = []
        """Source of each definition, in an order where each follows what it uses."""
        self.imports: set[str] = set()
        """Modules the definitions use (``datetime``, ``uuid``)."""
        self._reserved = _RESERVED | reserved
        self._schemas: dict[str, dict[str, Any]] = {}

    def annotation(self, schema: dict[str, Any], hint: str) -> str:
        """The annotation of a message with this self-contained ``schema``; ``hint``
        names it when the schema has no title of its own."""
        defs = schema.get("$defs", {})
        return self._annotate(schema, _Doc(defs if isinstance(defs, dict) else {}), hint)

    # -- annotations ------------------------------------------------------------------------

    def _annotate(self, schema: Any, doc: _Doc, hint: str) -> str:
        if not isinstance(schema, dict) or not schema:
            return "Any"
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            key = ref.removeprefix("#/$defs/")
            return self._named(key, doc.defs.get(key, {}), doc)
        for union in ("anyOf", "oneOf"):
            if isinstance(schema.get(union), list):
                return _union(self._annotate(s, doc, hint) for s in schema[union])
        if "const" in schema:
            return _literal([schema["const"]]) or "Any"
        if isinstance(schema.get("enum"), list):
            return _literal(schema["enum"]) or "Any"
        kind = schema.get("type")
        if isinstance(kind, list):
            return _union(self._annotate({**schema, "type": k}, doc, hint) for k in kind)
        if kind == "object" or "properties" in schema:
            return self._object(schema, doc, hint)
        if kind == "array":
            return self._array(schema, doc, hint)
        return self._scalar(schema)

    def _scalar(self, schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if kind == "string":
            if schema.get("contentEncoding") == "base64":
                return "bytes"
            known = _STRING_FORMATS.get(schema.get("format", ""))
            if known:
                self.imports.add(known.split(".")[0])
                return known
            return "str"
        return {"integer": "int", "number": "float", "boolean": "bool", "null": "None"}.get(
            str(kind), "Any"
        )

    def _array(self, schema: dict[str, Any], doc: _Doc, hint: str) -> str:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            items = ", ".join(self._annotate(s, doc, f"{hint}Item") for s in prefix)
            return f"tuple[{items}]"
        return f"list[{self._annotate(schema.get('items', {}), doc, f'{hint}Item')}]"

    def _object(self, schema: dict[str, Any], doc: _Doc, hint: str) -> str:
        if isinstance(schema.get("properties"), dict):
            title = schema.get("title")
            return self._define(title if isinstance(title, str) else hint, schema, doc)
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            return f"dict[str, {self._annotate(values, doc, f'{hint}Value')}]"
        return "dict[str, Any]"

    # -- named definitions ------------------------------------------------------------------

    def _named(self, key: str, schema: dict[str, Any], doc: _Doc) -> str:
        if key in doc.names:
            return doc.names[key]
        if isinstance(schema.get("properties"), dict):
            return self._define(key.rsplit(".", 1)[-1], schema, doc, key=key)
        # An enum or an alias: written inline (Literal["a", "b"]) rather than named.
        return self._annotate(schema, doc, key)

    def _define(self, wanted: str, schema: dict[str, Any], doc: _Doc, key: str = "") -> str:
        """A Struct for ``schema``, reusing an identical one met before."""
        base = identifier(wanted, reserved=self._reserved)
        bare = {k: v for k, v in schema.items() if k != "$defs"}
        name, n = base, 1
        while name in self._schemas and self._schemas[name] != bare:
            n += 1
            name = f"{base}{n}"
        if key:
            doc.names[key] = name
        if name in self._schemas:
            return name
        self._schemas[name] = bare
        self.definitions.append(self._struct(name, schema, doc))
        return name

    def _struct(self, name: str, schema: dict[str, Any], doc: _Doc) -> str:
        required = set(schema.get("required", []))
        lines = [f"class {name}(msgspec.Struct, kw_only=True):"]
        description = schema.get("description")
        text = description if isinstance(description, str) else f"The {name} message."
        lines.extend([f"    {_docstring(text)}", ""])
        used: set[str] = set()
        for field, sub in schema["properties"].items():
            attr = identifier(field, reserved=frozenset(used))
            used.add(attr)
            sub = sub if isinstance(sub, dict) else {}
            hint = name + identifier(field).title().replace("_", "")
            tp = self._annotate(sub, doc, hint)
            lines.append(f"    {attr}: {_field(tp, attr, field, sub, field in required)}")
        return "\n".join(lines).rstrip()


class _Doc:
    """One schema's ``$defs`` and the names their keys got in the module."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.names: dict[str, str] = {}


def _field(tp: str, attr: str, name: str, schema: dict[str, Any], required: bool) -> str:
    """The annotation and default of one field."""
    rename = f"name={json.dumps(name)}" if attr != name else ""
    if required:
        return f"{tp} = msgspec.field({rename})" if rename else tp
    default = _default(tp, schema.get("default", _NONE))
    if default is None:
        tp, default = _union([tp, "msgspec.UnsetType"]), "msgspec.UNSET"
    elif default == "None" and "None" not in tp.split(" | "):
        tp = _union([tp, "None"])
    if not rename:
        return f"{tp} = {default}"
    if default.startswith("msgspec.field("):
        return f"{tp} = {default[:-1]}, {rename})"
    return f"{tp} = msgspec.field(default={default}, {rename})"


_NONE: Any = object()


def _default(tp: str, value: Any) -> str | None:
    """A default as source, when it is one the annotation surely accepts; else ``None``."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return repr(value) if "bool" in tp.split(" | ") else None
    if isinstance(value, int | float):
        if isinstance(value, int) and "int" in tp.split(" | "):
            return repr(value)
        return repr(float(value)) if "float" in tp.split(" | ") else None
    if isinstance(value, str):
        accepts = "str" in tp.split(" | ") or _py(value) in tp
        return _py(value) if accepts else None
    if value == [] and tp.startswith("list["):
        return "msgspec.field(default_factory=list)"
    if value == {} and tp.startswith("dict["):
        return "msgspec.field(default_factory=dict)"
    return None


def _union(members: Any) -> str:
    seen: list[str] = []
    for member in members:
        for part in member.split(" | "):
            if part not in seen:
                seen.append(part)
    if "Any" in seen:
        return "Any"
    if "None" in seen:  # None last reads as "optional"
        seen = [*(p for p in seen if p != "None"), "None"]
    return " | ".join(seen)


def _literal(values: list[Any]) -> str | None:
    """``Literal[...]`` of JSON scalars (``None`` as a union member); ``None`` when a value
    cannot be a literal (a float, an object)."""
    plain = [v for v in values if v is not None]
    if not all(isinstance(v, str | int) for v in plain):
        return None
    parts = [f"Literal[{', '.join(_py(v) for v in plain)}]"] if plain else []
    if len(plain) < len(values):
        parts.append("None")
    return " | ".join(parts) or "None"


def _py(value: str | int | float | bool) -> str:
    """A JSON scalar as Python source, strings in double quotes as ``ruff format`` writes them."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _docstring(text: str) -> str:
    first = " ".join(text.split()).replace("\\", "\\\\").replace('"""', "'''")
    return f'"""{first}"""'
