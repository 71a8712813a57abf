"""Request bodies from query strings, JSON, forms and multipart (reference §4.3)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from micro import errors
from micro.api.body import build_body, merge_patch

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "on": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "inner": {"$ref": "#/$defs/Inner"},
    },
    "$defs": {"Inner": {"type": "object", "properties": {"id": {"type": "string"}}}},
}


def body(method: str, query: str, content_type: str = "", data: bytes = b"") -> Any:
    return json.loads(build_body(method, query.encode(), content_type, data, SCHEMA))


def test_query_values_take_their_schema_types() -> None:
    assert body("GET", "name=123&count=7&ratio=0.5&on=true&tags=a&tags=b&inner.id=9") == {
        "name": "123",
        "count": 7,
        "ratio": 0.5,
        "on": True,
        "tags": ["a", "b"],
        "inner": {"id": "9"},
    }


def test_query_without_schema_guesses_numbers_and_nests_brackets() -> None:
    out = build_body("GET", b"a[b]=1&c=x&c=y&d=true", "", b"", None)
    assert json.loads(out) == {"a": {"b": 1}, "c": ["x", "y"], "d": True}


def test_a_json_body_alone_is_passed_through_byte_for_byte() -> None:
    raw = b'{"name":  "John"}'
    assert build_body("POST", b"", "application/json", raw, SCHEMA) is raw


def test_json_body_is_merged_over_the_query() -> None:
    data = b'{"name": "body", "inner": {"id": "x"}}'
    assert body("POST", "name=query&count=2", "application/json", data) == {
        "name": "body",
        "count": 2,
        "inner": {"id": "x"},
    }


def test_curl_d_json_with_the_form_content_type_is_json() -> None:
    data = b'{"name":"John"}'
    assert body("POST", "", "application/x-www-form-urlencoded", data) == {"name": "John"}


def test_forms_and_multipart() -> None:
    assert body("POST", "", "application/x-www-form-urlencoded", b"name=Ann&count=3") == {
        "name": "Ann",
        "count": 3,
    }
    boundary = "XyZ"
    data = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nBob\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n"
        f"--{boundary}--\r\n"
    ).encode("latin-1")
    out = body("POST", "", f"multipart/form-data; boundary={boundary}", data)
    assert out == {"name": "Bob", "file": base64.b64encode(b"\x00\x01").decode()}


def test_malformed_json_is_a_400_naming_the_problem() -> None:
    # (alone, the body goes to the service as it is: the service says what is wrong)
    with pytest.raises(errors.BadRequest, match="malformed JSON body"):
        build_body("POST", b"name=x", "application/json", b'{"name":', SCHEMA)


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deep_nesting_merged_over_the_query_is_a_400(depth: int) -> None:
    body = b'{"a":' * depth + b"1" + b"}" * depth
    with pytest.raises(errors.BadRequest, match="nests too deeply"):
        build_body("POST", b"name=x", "application/json", body, SCHEMA)


def test_nothing_is_an_empty_object() -> None:
    assert build_body("GET", b"", "", b"", SCHEMA) == b"{}"


def test_merge_patch() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}, "a": None}) == {
        "b": {"c": 2, "d": 3}
    }
