"""The request body the gateway sends: from the query string, a JSON body, a form or a
multipart form (reference §4.3).

A JSON body with no query parameters is passed on as the very bytes received, never
decoded here: the service decodes it once, into its typed request, and answers a
malformed one with a 400 that says where. Query parameters nest on ``a[b]=1`` and ``a.b=1``, repeat
into lists, and take their types from the endpoint's request schema where it has one
(``?name=123`` stays the string ``"123"`` for a string field; Micro guessed numbers and
broke such fields), else numbers and booleans are recognised. A JSON body is merged over
the query fields (JSON merge patch). Form fields follow the query rules; uploaded files
become base64 strings, as Micro's bytes fields are in JSON.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import re
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec

from micro import errors

__all__ = ["build_body", "merge_patch"]

_ID: Final = "micro.api"
_KEY_PARTS: Final = re.compile(r"[^.\[\]]+")
_NUMBER: Final = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def _field_schema(schema: dict[str, Any] | None, path: list[str]) -> dict[str, Any] | None:
    """The schema of the field at ``path`` (``$ref`` resolved), or ``None`` if unknown."""
    if schema is None:
        return None
    defs = schema.get("$defs", {})
    node: dict[str, Any] | None = schema
    for name in path:
        node = _deref(node, defs)
        if node is None:
            return None
        props = node.get("properties")
        node = props.get(name) if isinstance(props, dict) else None
    return _deref(node, defs)


def _deref(node: dict[str, Any] | None, defs: dict[str, Any]) -> dict[str, Any] | None:
    while node is not None and "$ref" in node:
        node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1])
    if node is not None and "anyOf" in node:  # Optional[T]: the non-null branch
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            return _deref(branches[0], defs)
    return node


def _typed(value: str, schema: dict[str, Any] | None) -> Any:
    """A query or form value as the type its field wants."""
    kind = schema.get("type") if schema is not None else None
    if kind == "array" and schema is not None:
        return _typed(value, _deref(schema.get("items"), {}) if schema.get("items") else None)
    if kind == "string":
        return value
    if kind == "boolean" or (kind is None and value in ("true", "false")):
        return value.lower() not in ("false", "0", "")
    if kind in ("integer", "number") or (kind is None and _NUMBER.fullmatch(value)):
        try:
            number = float(value)
        except ValueError:
            return value  # let the service say what is wrong with it
        return int(number) if number.is_integer() and "." not in value else number
    if kind == "object" and value[:1] in ("{", "["):
        try:
            return _decode(value)
        except msgspec.DecodeError:
            return value
    return value


def _fields(pairs: list[tuple[str, Any]], schema: dict[str, Any] | None) -> dict[str, Any]:
    """Nest ``a[b]``/``a.b`` keys; repeated keys (or array fields) become lists."""
    out: dict[str, Any] = {}
    for key, raw in pairs:
        path = _KEY_PARTS.findall(key)
        if not path:
            continue
        field = _field_schema(schema, path)
        value = _typed(raw, field) if isinstance(raw, str) else raw
        node = out
        for name in path[:-1]:
            child = node.get(name)
            if not isinstance(child, dict):
                child = node[name] = {}
            node = child
        last = path[-1]
        is_list = field is not None and field.get("type") == "array"
        if last in node:
            existing = node[last]
            node[last] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            node[last] = [value] if is_list else value
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``patch`` over ``target``."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _check_json(body: bytes) -> Any:
    try:
        return _decode(body)
    except msgspec.DecodeError as exc:
        raise errors.BadRequest(_ID, f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise _too_deep() from None


def _too_deep() -> errors.BadRequest:
    return errors.BadRequest(_ID, "malformed JSON body: it nests too deeply")


def _multipart(content_type: str, body: bytes) -> list[tuple[str, Any]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise errors.BadRequest(_ID, "malformed multipart body")
    pairs: list[tuple[str, Any]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            pairs.append((name, base64.b64encode(data).decode()))
        else:
            pairs.append((name, data.decode("utf-8", errors="replace")))
    return pairs


def build_body(
    method: str,
    query: bytes,
    content_type: str,
    body: bytes,
    schema: dict[str, Any] | None,
) -> bytes:
    """The JSON request for the service (``{}`` when the request carries nothing)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    fields = (
        _fields(parse_qsl(query.decode("latin-1"), keep_blank_values=True), schema) if query else {}
    )
    if not body or method in ("GET", "HEAD"):
        return _encode(fields) if fields else b"{}"
    if kind == "application/x-www-form-urlencoded" and body.lstrip()[:1] not in (b"{", b"["):
        # (``curl -d '{"name": "x"}'`` says form-urlencoded about a JSON body: JSON it is)
        form = _fields(
            parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True), schema
        )
        return _encode(merge_patch(fields, form))
    if kind == "multipart/form-data":
        return _encode(merge_patch(fields, _fields(_multipart(content_type, body), schema)))
    # every other content type is read as JSON, as Micro does
    if not fields:
        # the caller's own bytes: the service decodes them (straight into its request
        # type) and answers a malformed body with a 400 saying where
        return body
    try:
        return _encode(merge_patch(fields, _check_json(body)))
    except RecursionError:  # merge_patch recurses as deep as the body nests
        raise _too_deep() from None
