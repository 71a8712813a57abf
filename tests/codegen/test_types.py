"""JSON Schemas to Python types: the shapes the registry publishes, each as mypy and
msgspec read it."""

from __future__ import annotations

from typing import Any

from micro.codegen.client import class_name, render
from micro.codegen.types import TypeWriter, identifier
from micro.registry.base import Endpoint


def test_scalars_unions_literals_and_containers() -> None:
    types = TypeWriter()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "string"}, "str"),
        ({"type": "string", "format": "date-time"}, "datetime.datetime"),
        ({"type": "string", "contentEncoding": "base64"}, "bytes"),
        ({"type": ["integer", "null"]}, "int | None"),
        ({"anyOf": [{"type": "null"}, {"type": "number"}]}, "float | None"),
        ({"enum": ["a", "b", None]}, 'Literal["a", "b"] | None'),
        ({"const": 3}, "Literal[3]"),
        ({"type": "array", "items": {"type": "boolean"}}, "list[bool]"),
        (
            {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
            "tuple[int, str]",
        ),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, "dict[str, int]"),
        ({"type": "object"}, "dict[str, Any]"),
        ({}, "Any"),
        ({"anyOf": [{}, {"type": "string"}]}, "Any"),
    ]
    for schema, expected in cases:
        assert types.annotation(schema, "X") == expected, schema
    assert types.imports == {"datetime"}


def test_the_same_name_with_other_fields_gets_a_number() -> None:
    types = TypeWriter()
    first = {"title": "Request", "type": "object", "properties": {"a": {"type": "integer"}}}
    second = {"title": "Request", "type": "object", "properties": {"b": {"type": "string"}}}
    assert types.annotation(first, "X") == "Request"
    assert types.annotation(dict(first), "X") == "Request"  # the same one again: reused
    assert types.annotation(second, "X") == "Request2"
    assert len(types.definitions) == 2


def test_fields_keep_wire_names_defaults_and_unset() -> None:
    types = TypeWriter()
    schema = {
        "title": "Order",
        "type": "object",
        "properties": {
            "class": {"type": "string"},
            "two words": {"type": "integer", "default": 2},
            "items": {"type": "array", "items": {"type": "string"}, "default": []},
            "when": {"type": "string", "format": "date-time", "default": "2020-01-01T00:00:00Z"},
            "note": {"type": "string", "default": None},
        },
        "required": ["class"],
    }
    assert types.annotation(schema, "X") == "Order"
    [source] = types.definitions
    assert 'class_: str = msgspec.field(name="class")' in source
    assert 'two_words: int = msgspec.field(default=2, name="two words")' in source
    assert "items: list[str] = msgspec.field(default_factory=list)" in source
    assert "when: datetime.datetime | msgspec.UnsetType = msgspec.UNSET" in source
    assert "note: str | None = None" in source


def test_names_of_services_and_methods() -> None:
    assert class_name("hello-world") == "HelloWorldClient"
    assert class_name("v1.foo") == "V1FooClient"
    assert identifier("def") == "def_"
    assert identifier("2fa") == "_2fa"
    endpoints = [
        Endpoint(name="Orders.Get"),
        Endpoint(name="Admin.Get"),
        Endpoint(name="Debug.Health"),
    ]
    text = render("shop", endpoints, source="a test")
    assert "async def admin_get(" in text
    assert "async def orders_get(" in text
    assert "Debug" not in text
