"""JSON Schemas derived from request and response types: each one whole on its own."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any, Literal, TypedDict

import msgspec
import pydantic
import pytest

from micro.rpc import endpoints_of
from micro.rpc.schema import schema_for


class Address(msgspec.Struct):
    street: str
    city: str = "Berlin"


class Person(msgspec.Struct):
    name: str
    age: int
    home: Address
    others: list[Address] = []
    role: Literal["admin", "user"] = "user"


class Tree(msgspec.Struct):
    label: str
    children: list[Tree] = []


@dataclasses.dataclass
class DataPerson:
    name: str
    home: Address
    nickname: str | None = None


class DictPerson(TypedDict):
    name: str
    home: Address


class PydAddress(pydantic.BaseModel):
    street: str


class PydPerson(pydantic.BaseModel):
    name: str
    age: int = 0
    home: PydAddress


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def assert_self_contained(schema: dict[str, Any]) -> None:
    """Every ``$ref`` points into the schema's own top-level ``$defs``, and it is plain JSON."""
    assert json.loads(json.dumps(schema)) == schema
    defs = schema.get("$defs", {})
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in defs, f"{ref} does not resolve"
    assert "$ref" not in schema, "the root should be inline, not a reference"


@pytest.mark.parametrize(
    ("tp", "required", "nested"),
    [
        pytest.param(Person, {"name", "age", "home"}, "Address", id="struct"),
        pytest.param(DataPerson, {"name", "home"}, "Address", id="dataclass"),
        pytest.param(DictPerson, {"name", "home"}, "Address", id="typeddict"),
        pytest.param(PydPerson, {"name", "home"}, "PydAddress", id="pydantic"),
    ],
)
def test_schema_of_each_kind_of_type(tp: Any, required: set[str], nested: str) -> None:
    schema = schema_for(tp)
    assert_self_contained(schema)
    assert schema["type"] == "object"
    assert schema["title"] == tp.__name__
    assert set(schema["required"]) == required
    assert schema["properties"]["name"]["type"] == "string"
    assert schema["properties"]["home"] == {"$ref": f"#/$defs/{nested}"}
    assert schema["$defs"][nested]["properties"]["street"]["type"] == "string"
    assert tp.__name__ not in schema["$defs"], "the root is not repeated in $defs"


def test_nested_types_keep_their_details() -> None:
    schema = schema_for(Person)
    assert schema["properties"]["others"]["items"] == {"$ref": "#/$defs/Address"}
    assert schema["properties"]["role"]["enum"] == ["admin", "user"]
    assert schema["$defs"]["Address"]["properties"]["city"]["default"] == "Berlin"


def test_recursive_type_keeps_its_own_definition() -> None:
    schema = schema_for(Tree)
    assert_self_contained(schema)
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}


@pytest.mark.parametrize("tp", [Any, None, type(None)])
def test_no_type_is_an_empty_schema(tp: Any) -> None:
    assert schema_for(tp) == {}


def test_builtin_and_container_types() -> None:
    assert schema_for(int) == {"type": "integer"}
    schema = schema_for(list[Address])
    assert_self_contained(schema)
    assert schema["type"] == "array"


class Directory:
    async def lookup(self, req: Person) -> DataPerson:
        raise NotImplementedError

    async def upload(self, reqs: AsyncIterator[Tree]) -> PydPerson:
        raise NotImplementedError

    async def watch(self, req: DictPerson) -> AsyncIterator[Tree]:
        yield Tree("x")

    async def ping(self) -> None:
        return None


@pytest.mark.parametrize(
    ("endpoint", "request_title", "response_title"),
    [
        ("Directory.Lookup", "Person", "DataPerson"),
        ("Directory.Upload", "Tree", "PydPerson"),
        ("Directory.Watch", "DictPerson", "Tree"),
    ],
)
def test_endpoint_schemas_are_self_contained(
    endpoint: str, request_title: str, response_title: str
) -> None:
    eps = {ep.name: ep for ep in endpoints_of(Directory())}
    ep = eps[endpoint]
    request, response = ep.request_schema(), ep.response_schema()
    assert_self_contained(request)
    assert_self_contained(response)
    assert request["title"] == request_title
    assert response["title"] == response_title
    # Published on its own, the request schema still says what a nested field holds.
    for ref in _refs(request):
        assert request["$defs"][ref.removeprefix("#/$defs/")]["type"] == "object"


def test_endpoint_without_request_has_an_empty_request_schema() -> None:
    (ep,) = [e for e in endpoints_of(Directory()) if e.name == "Directory.Ping"]
    assert ep.request_schema() == {}
    assert ep.response_schema() == {}
