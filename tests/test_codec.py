"""Body codecs: JSON and msgpack round trips for every supported kind of type, and the
400s that bad bodies and unknown content types become."""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

import msgspec
import pydantic
import pytest

from micro import codec, errors

CONTENT_TYPES = [codec.JSON, codec.MSGPACK]


class Point(msgspec.Struct):
    x: int
    y: int = 0


class Shape(msgspec.Struct):
    name: str
    points: list[Point]
    tags: set[str] = set()


@dataclasses.dataclass
class User:
    name: str
    age: int
    email: str | None = None


class Item(TypedDict):
    sku: str
    count: int


class Order(pydantic.BaseModel):
    id: int
    items: list[str]
    note: str = ""


class Nested(msgspec.Struct):
    inner: Point


VALUES = [
    pytest.param(Point, Point(1, 2), id="struct"),
    pytest.param(Shape, Shape("tri", [Point(0), Point(1, 1)], {"a"}), id="nested-struct"),
    pytest.param(User, User("ada", 36, "ada@example.com"), id="dataclass"),
    pytest.param(Item, Item(sku="x1", count=3), id="typeddict"),
    pytest.param(Order, Order(id=7, items=["a", "b"], note="n"), id="pydantic"),
    pytest.param(list[Point], [Point(1), Point(2)], id="list-of-structs"),
    pytest.param(dict[str, int], {"a": 1}, id="dict"),
    pytest.param(Any, {"free": [1, "two", None]}, id="any"),
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize(("tp", "value"), VALUES)
def test_round_trip(content_type: str, tp: Any, value: Any) -> None:
    c = codec.codec_for(content_type)
    data = c.encode(value)
    assert isinstance(data, bytes)
    got = c.decode(data, tp)
    assert got == value
    if tp is not Any:
        assert type(got) is type(value)


def test_json_is_plain_json_for_other_languages() -> None:
    c = codec.codec_for(codec.JSON)
    assert c.encode(Order(id=1, items=["a"])) == b'{"id":1,"items":["a"],"note":""}'
    assert c.encode(User("a", 1)) == b'{"name":"a","age":1,"email":null}'


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize(
    ("tp", "body", "field"),
    [
        pytest.param(Point, {"x": "one"}, "x", id="struct"),
        pytest.param(Nested, {"inner": {"x": 1, "y": "two"}}, "inner.y", id="nested"),
        pytest.param(User, {"name": "a", "age": "old"}, "age", id="dataclass"),
        pytest.param(Item, {"sku": "a", "count": [1]}, "count", id="typeddict"),
        pytest.param(Order, {"id": "seven", "items": []}, "id", id="pydantic"),
    ],
)
def test_wrong_field_type_is_a_400_naming_the_field(
    content_type: str, tp: Any, body: dict[str, Any], field: str
) -> None:
    c = codec.codec_for(content_type)
    with pytest.raises(errors.BadRequest) as info:
        c.decode(c.encode(body), tp)
    assert info.value.code == 400
    assert field in info.value.detail
    assert "Traceback" not in info.value.detail


@pytest.mark.parametrize("tp", [Point, User, Item])
def test_missing_required_field_is_a_400_naming_it(tp: Any) -> None:
    with pytest.raises(errors.BadRequest) as info:
        codec.codec_for(codec.JSON).decode(b"{}", tp)
    assert ("`x`" if tp is Point else "`name`" if tp is User else "`sku`") in info.value.detail


@pytest.mark.parametrize("tp", [Point, Order, Any])
@pytest.mark.parametrize("body", [b"{", b"{'x': 1}", b"", b"\xff"])
def test_malformed_json_is_a_400(tp: Any, body: bytes) -> None:
    with pytest.raises(errors.BadRequest, match="malformed JSON body"):
        codec.codec_for(codec.JSON).decode(body, tp)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (codec.JSON, b"[" * 100_000 + b"]" * 100_000),
        (codec.JSON, b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        (codec.MSGPACK, b"\x91" * 100_000 + b"\x90"),  # fixarray of one, 100,000 deep
    ],
)
def test_deep_nesting_is_a_400_not_a_recursion_error(content_type: str, body: bytes) -> None:
    with pytest.raises(errors.BadRequest, match="nests too deeply"):
        codec.codec_for(content_type).decode(body, Any)


def test_malformed_msgpack_is_a_400() -> None:
    with pytest.raises(errors.BadRequest, match="malformed msgpack body"):
        codec.codec_for(codec.MSGPACK).decode(b"\xc1", Point)


@pytest.mark.parametrize("content_type", ["text/html", "application/xml", "", "json"])
def test_unknown_content_type_is_a_400_naming_it(content_type: str) -> None:
    with pytest.raises(errors.BadRequest) as info:
        codec.codec_for(content_type)
    assert repr(content_type) in info.value.detail


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", codec.JSON),
        ("application/json; charset=utf-8", codec.JSON),
        ("Application/JSON", codec.JSON),
        ("application/grpc+json", codec.JSON),
        ("text/json", codec.JSON),
        ("application/msgpack", codec.MSGPACK),
        ("application/x-msgpack", codec.MSGPACK),
    ],
)
def test_content_type_aliases(content_type: str, expected: str) -> None:
    assert codec.codec_for(content_type).content_type == expected


def test_unencodable_value_is_a_500_not_a_crash() -> None:
    with pytest.raises(errors.InternalServerError, match="cannot encode"):
        codec.codec_for(codec.JSON).encode(object())


def test_is_pydantic_model() -> None:
    assert codec.is_pydantic_model(Order)
    assert not codec.is_pydantic_model(Order(id=1, items=[]))
    assert not codec.is_pydantic_model(Point)
    assert not codec.is_pydantic_model(User)
