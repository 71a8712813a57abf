"""Forms from JSON Schemas: an endpoint's request schema becomes form fields, and what the
form sends back becomes the request again, typed by the same schema.

One walk of the schema (:func:`form_for`) serves both ways, so the page and the parser
can never disagree about a field. What a form can show:

- ``string`` -> a text input; ``integer``/``number`` -> a number input (step 1 or any);
  ``boolean`` -> a checkbox (``Optional[bool]`` -> a true/false select, since a checkbox
  cannot say "not given"); ``enum``/``const`` -> a select;
- an object with properties -> a fieldset whose inputs are named ``parent.child``;
- a list of scalars -> a textarea taking one item per line (items may hold commas);
- anything else (maps, lists of objects, unions, ``Any``, a type that refers to itself,
  nesting deeper than :data:`MAX_DEPTH`) -> a textarea taking JSON.

``$ref`` (local pointers, ``$defs`` included) and ``anyOf``/``oneOf`` with ``null``
(``Optional``) are followed. A request that is not an object with properties has no form:
only the raw JSON textarea (:func:`request_from_json`), which every endpoint offers too.

Reading a form back (:func:`request_from_form`): an empty field is left out (so the
service's default applies) unless it is required; a required text or list field left
empty is ``""``/``[]``; a required number, choice or JSON field left empty is an error. An
optional object none of whose fields was filled in is left out whole. A value that does
not fit its field is a :class:`~micro.errors.BadRequest` naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from starlette.datastructures import FormData

from micro import errors

__all__ = [
    "MAX_DEPTH",
    "Choice",
    "Field",
    "Form",
    "form_for",
    "pretty",
    "request_from_form",
    "request_from_json",
]

MAX_DEPTH: Final = 3
"""How many fieldsets may nest; an object deeper than that is a JSON textarea."""

_ID: Final = "micro.web"
_TRUE: Final = frozenset({"on", "true", "1", "yes"})
_FALSE: Final = frozenset({"off", "false", "0", "no", ""})

Kind = Literal["text", "integer", "number", "boolean", "select", "object", "list", "json"]
_SCALARS: Final[dict[str, Kind]] = {
    "string": "text",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
}


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a select: the JSON value and the text the form sends for it."""

    value: Any
    text: str


@dataclass(frozen=True, slots=True)
class Field:
    """One input of a form (or a fieldset of them, for ``kind="object"``)."""

    name: str
    """The input's name: the property path joined with dots (``a.b``)."""
    label: str
    kind: Kind
    type_name: str
    """What the schema says the value is, for the label (``integer``, ``list of string``)."""
    required: bool = False
    """The request (or the enclosing object) must have this property."""
    mandatory: bool = False
    """The browser must ask for a value: required, needs one, and in no optional object."""
    description: str = ""
    placeholder: str = ""
    """The schema's default, shown in the empty input (left empty, the default applies)."""
    checked: bool = False
    """A checkbox's default."""
    choices: tuple[Choice, ...] = ()
    fields: tuple[Field, ...] = ()
    """The fields of an object."""
    item: Field | None = None
    """What one item of a list is."""
    expect: str = ""
    """The JSON type a JSON field must hold (``object``, ``array``), or "" for any."""
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Form:
    """The form of one endpoint's request."""

    fields: tuple[Field, ...]
    fits: bool
    """False when the request is not an object with known properties: raw JSON only."""
    example: str
    """A request of the right shape, pretty JSON, to start the raw JSON textarea with."""


def pretty(value: Any) -> str:
    """JSON for people: indented by 2, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False)


# -- schema -> fields ---------------------------------------------------------------------


class _Walker:
    """Walks one schema document, following its local ``$ref`` pointers."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def deref(self, schema: Any, seen: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The schema a ``$ref`` (or a one-item ``allOf``) stands for, its own keywords
        (description, default) kept; ``seen`` gains each pointer followed, and a pointer
        already in it (a type containing itself) gives ``{"$recursive": ...}``."""
        schema = dict(schema) if isinstance(schema, dict) else {}
        while True:
            ref = schema.pop("$ref", None)
            if ref is None and isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
                ref_schema = schema.pop("allOf")[0]
                schema = {**(ref_schema if isinstance(ref_schema, dict) else {}), **schema}
                continue
            if not isinstance(ref, str):
                return schema, seen
            if ref in seen:
                return {"$recursive": ref}, seen
            seen = (*seen, ref)
            schema = {**self.pointer(ref), **schema}

    def pointer(self, ref: str) -> dict[str, Any]:
        """A local JSON pointer (``#/$defs/Name``); ``{}`` (anything) when it leads nowhere."""
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}


def _optional(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Unwrap ``anyOf``/``oneOf`` with null and ``type: [X, "null"]``: (schema, nullable)."""
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            others = [o for o in options if o != {"type": "null"}]
            if len(others) == 1 and len(others) < len(options):
                rest = {k: v for k, v in schema.items() if k != key}
                return {**others[0], **rest}, True
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        others = [t for t in types if t != "null"]
        if len(others) == 1:
            return {**schema, "type": others[0]}, True
    return schema, False


def _choices(schema: dict[str, Any]) -> tuple[Choice, ...] | None:
    values = schema.get("enum")
    if values is None and "const" in schema:
        values = [schema["const"]]
    if not isinstance(values, list) or not values:
        return None
    return tuple(Choice(v, v if isinstance(v, str) else json.dumps(v)) for v in values)


def _default_text(schema: dict[str, Any]) -> str:
    if "default" not in schema or schema["default"] in (None, "", [], {}):
        return ""
    default = schema["default"]
    return default if isinstance(default, str) else json.dumps(default)


class _Builder:
    def __init__(self, walker: _Walker) -> None:
        self.walker = walker

    def field(
        self,
        name: str,
        label: str,
        raw: Any,
        *,
        required: bool,
        in_optional: bool,
        depth: int,
        seen: tuple[str, ...],
    ) -> Field:
        schema, seen = self.walker.deref(raw, seen)
        schema, nullable = _optional(schema)
        schema, seen = self.walker.deref(schema, seen)
        common: dict[str, Any] = {
            "name": name,
            "label": label,
            "required": required,
            "description": str(schema.get("description") or ""),
            "placeholder": _default_text(schema),
        }
        choices = _choices(schema)
        kind = _SCALARS.get(str(schema.get("type")))
        needs = required and not in_optional
        if choices is not None or (kind == "boolean" and nullable):
            choices = choices or (Choice(True, "true"), Choice(False, "false"))
            return Field(
                kind="select", type_name="one of", choices=choices, mandatory=needs, **common
            )
        if kind == "boolean":
            return Field(
                kind="boolean", type_name="boolean", checked=schema.get("default") is True, **common
            )
        if kind is not None:
            mandatory = needs and kind != "text"
            return Field(kind=kind, type_name=str(schema["type"]), mandatory=mandatory, **common)
        if schema.get("type") == "array" and "prefixItems" not in schema:
            item = self.field(
                name,
                label,
                schema.get("items"),
                required=True,
                in_optional=True,
                depth=depth,
                seen=seen,
            )
            if item.kind in ("text", "integer", "number", "boolean", "select"):
                return Field(
                    kind="list",
                    type_name=f"list of {item.type_name}",
                    item=item,
                    hint="one item per line",
                    **common,
                )
        properties = schema.get("properties")
        if (
            schema.get("type", "object") == "object"
            and isinstance(properties, dict)
            and depth <= MAX_DEPTH
        ):
            fields = self.fields(
                schema,
                prefix=f"{name}.",
                in_optional=in_optional or not required,
                depth=depth + 1,
                seen=seen,
            )
            return Field(kind="object", type_name="object", fields=fields, **common)
        expect = schema.get("type") if schema.get("type") in ("object", "array") else ""
        return Field(
            kind="json",
            type_name="JSON",
            expect=str(expect),
            mandatory=needs,
            hint=f"JSON {expect}".strip() if expect else "any JSON value",
            **common,
        )

    def fields(
        self,
        schema: dict[str, Any],
        *,
        prefix: str,
        in_optional: bool,
        depth: int,
        seen: tuple[str, ...],
    ) -> tuple[Field, ...]:
        required = schema.get("required")
        needed = set(required) if isinstance(required, list) else set()
        return tuple(
            self.field(
                prefix + str(key),
                str(key),
                value,
                required=key in needed,
                in_optional=in_optional,
                depth=depth,
                seen=seen,
            )
            for key, value in schema.get("properties", {}).items()
        )


def _example(walker: _Walker, raw: Any, seen: tuple[str, ...], depth: int) -> Any:
    schema, seen = walker.deref(raw, seen)
    schema, nullable = _optional(schema)
    schema, seen = walker.deref(schema, seen)
    if "default" in schema:
        return schema["default"]
    choices = _choices(schema)
    if choices:
        return choices[0].value
    kind = schema.get("type")
    if "$recursive" in schema or nullable or depth > MAX_DEPTH:
        return None
    if kind == "object" or "properties" in schema:
        return {
            str(k): _example(walker, v, seen, depth + 1)
            for k, v in (schema.get("properties") or {}).items()
        }
    zero = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": []}
    return zero.get(kind) if isinstance(kind, str) else None


def form_for(schema: dict[str, Any]) -> Form:
    """The form of a request with this JSON Schema."""
    walker = _Walker(schema)
    root, seen = walker.deref(schema, ())
    fits = root.get("type", "object") == "object" and isinstance(root.get("properties"), dict)
    fields = (
        _Builder(walker).fields(root, prefix="", in_optional=False, depth=1, seen=seen)
        if fits
        else ()
    )
    example = _example(walker, schema, (), 1) if schema else {}
    return Form(fields, fits, pretty({} if example is None else example))


# -- form data -> request -----------------------------------------------------------------


def _text(data: FormData, name: str) -> list[str]:
    values = data.getlist(name)
    texts = [v for v in values if isinstance(v, str)]
    if len(texts) != len(values):
        raise errors.BadRequest(_ID, f"{name}: a file is not a value here")
    return texts


def _scalar(field: Field, value: str, where: str) -> Any:
    """One typed value of a scalar field (a list's item too); ``where`` names it in errors."""
    if field.kind == "text":
        return value
    text = value.strip()
    if field.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise errors.BadRequest(_ID, f"{where}: {text!r} is not a whole number") from None
    if field.kind == "number":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise errors.BadRequest(_ID, f"{where}: {text!r} is not a number")
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if field.kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise errors.BadRequest(_ID, f"{where}: {text!r} is not true or false")
    for choice in field.choices:
        if choice.text == value:
            return choice.value
    allowed = ", ".join(c.text for c in field.choices)
    raise errors.BadRequest(_ID, f"{where}: {value!r} is not one of {allowed}")


def _json(field: Field, value: str) -> Any:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise errors.BadRequest(_ID, f"{field.name}: not valid JSON ({exc})") from None
    wanted = {"object": dict, "array": list}.get(field.expect)
    if wanted is not None and not isinstance(parsed, wanted):
        raise errors.BadRequest(_ID, f"{field.name}: a JSON {field.expect} is needed")
    return parsed


_OMIT: Final = object()
"""The value of a field left out of the request."""

Value = tuple[Any, bool, str | None]
"""A field's value (or ``_OMIT``), whether it was filled in, and why it is missing: a
required field left empty is an error only if its optional object is not left out."""


def _value(field: Field, data: FormData) -> Value:
    if field.kind == "object":
        return _collect(field.fields, data, optional=not field.required)
    values = _text(data, field.name)
    if field.kind == "boolean":
        checked = bool(values) and _scalar(field, values[-1], field.name) is True
        return checked, checked != field.checked, None
    if field.kind == "list":
        assert field.item is not None
        # one value per line, or (from a script) one value per form entry
        lines = values if len(values) > 1 else "\n".join(values).splitlines()
        items = [
            _scalar(field.item, line.rstrip("\r"), f"{field.name}, item {n}")
            for n, line in enumerate((v for v in lines if v.strip()), start=1)
        ]
        if items:
            return items, True, None
        return ([] if field.required else _OMIT), False, None
    value = values[-1] if values else ""
    if value.strip() == "" and not (field.kind == "text" and value):
        if not field.required:
            return _OMIT, False, None
        if field.kind == "text":
            return "", False, None
        return _OMIT, False, f"{field.name}: a value is needed"
    if field.kind == "json":
        return _json(field, value), True, None
    return _scalar(field, value, field.name), True, None


def _collect(fields: Iterable[Field], data: FormData, *, optional: bool) -> Value:
    out: dict[str, Any] = {}
    filled = False
    missing: str | None = None
    for field in fields:
        value, got, lack = _value(field, data)
        filled = filled or got
        missing = missing or lack
        if value is not _OMIT:
            out[field.label] = value
    if optional and not filled:
        return _OMIT, False, None
    return out, filled, missing


def request_from_form(form: Form, data: FormData) -> dict[str, Any]:
    """The request a submitted form stands for; :class:`~micro.errors.BadRequest` naming
    the field whose value does not fit."""
    request, _, missing = _collect(form.fields, data, optional=False)
    if missing is not None:
        raise errors.BadRequest(_ID, missing)
    assert isinstance(request, dict)
    return request


def request_from_json(text: str) -> Any:
    """The request typed as raw JSON (empty: ``{}``); a BadRequest saying where it breaks."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.BadRequest(_ID, f"the request is not valid JSON ({exc})") from None
