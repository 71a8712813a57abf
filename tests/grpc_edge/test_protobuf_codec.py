"""Protobuf message types in the codecs and schemas: the binary form for
``application/protobuf``, protobuf's JSON mapping for JSON and msgpack callers, and a JSON
Schema drawn from the descriptor (classes generated from greeter.proto by protoc)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from micro import codec, errors
from micro.rpc import endpoints_of
from micro.rpc.schema import schema_for


@pytest.fixture
def pb2(greeter_pb: tuple[Path, ModuleType, ModuleType]) -> Any:
    return greeter_pb[1]


def _reply(pb2: Any) -> Any:
    reply = pb2.HelloReply(msg="hi", visits=2**53 + 1, mood=pb2.GRUMPY, digest=b"\x00\xff")
    reply.tag_lengths["ab"] = 2
    return reply


@pytest.mark.parametrize("content_type", [codec.JSON, codec.MSGPACK, codec.PROTOBUF])
def test_round_trip(pb2: Any, content_type: str) -> None:
    c = codec.codec_for(content_type)
    reply = _reply(pb2)
    assert c.decode(c.encode(reply), pb2.HelloReply) == reply


def test_protobuf_is_the_binary_form(pb2: Any) -> None:
    reply = _reply(pb2)
    assert codec.codec_for(codec.PROTOBUF).encode(reply) == reply.SerializeToString()


def test_json_is_protobufs_json_mapping_with_proto_names(pb2: Any) -> None:
    data = codec.codec_for(codec.JSON).encode(_reply(pb2))
    assert msgspec.json.decode(data) == {
        "msg": "hi",
        "visits": str(2**53 + 1),  # int64 as a string: no precision lost in JavaScript
        "mood": "GRUMPY",
        "tag_lengths": {"ab": 2},
        "digest": "AP8=",
    }
    # Fields left at their defaults are shown, as for Structs.
    empty = codec.codec_for(codec.JSON).encode(pb2.CountReply())
    assert msgspec.json.decode(empty) == {"n": 0}


def test_json_decoding_takes_int64_as_number_or_string(pb2: Any) -> None:
    c = codec.codec_for(codec.JSON)
    for visits in (b"7", b'"7"'):
        req = c.decode(b'{"name": "x", "visits": ' + visits + b"}", pb2.HelloRequest)
        assert (req.name, req.visits) == ("x", 7)
    assert c.decode(b'{"mood": 1}', pb2.HelloRequest).mood == pb2.HAPPY


def test_msgpack_bytes_are_taken_as_bytes(pb2: Any) -> None:
    data = msgspec.msgpack.encode({"msg": "m", "digest": b"\x01\x02"})
    assert codec.codec_for(codec.MSGPACK).decode(data, pb2.HelloReply).digest == b"\x01\x02"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"visits": "many"}', "invalid request: .*visits"),
        (b'{"tags": 3}', "invalid request: .*tags"),
        (b'{"mood": "SAD"}', "invalid request: .*mood"),
        (b'{"nmae": "x"}', "invalid request: .*nmae"),
        (b'{"place": {"town": "x"}}', "invalid request: .*town"),
        (b"[1]", "invalid request: expected an object"),
        (b'"text"', "invalid request: expected an object"),
        (b"{", "malformed JSON body"),
    ],
)
def test_bad_json_is_a_400(pb2: Any, body: bytes, match: str) -> None:
    with pytest.raises(errors.BadRequest, match=match) as info:
        codec.codec_for(codec.JSON).decode(body, pb2.HelloRequest)
    assert "\n" not in info.value.detail


def test_bad_protobuf_is_a_400(pb2: Any) -> None:
    with pytest.raises(errors.BadRequest, match="malformed protobuf body"):
        codec.codec_for(codec.PROTOBUF).decode(b"\xff\xff\xff", pb2.HelloRequest)


def test_protobuf_needs_protobuf_types(pb2: Any) -> None:
    class Point(msgspec.Struct):
        x: int

    c = codec.codec_for(codec.PROTOBUF)
    with pytest.raises(errors.BadRequest, match="does not take protobuf bodies"):
        c.decode(b"\x08\x01", Point)
    with pytest.raises(errors.InternalServerError, match="Point is not a protobuf message"):
        c.encode(Point(1))


@pytest.mark.parametrize(
    "content_type",
    [
        "application/protobuf",
        "application/x-protobuf",
        "application/grpc+proto",
        "application/grpc",
    ],
)
def test_protobuf_aliases(content_type: str) -> None:
    assert codec.codec_for(content_type).content_type == codec.PROTOBUF


def test_is_protobuf_message(pb2: Any) -> None:
    assert codec.is_protobuf_message(pb2.HelloRequest)
    assert not codec.is_protobuf_message(pb2.HelloRequest())
    assert not codec.is_protobuf_message(dict)
    assert not codec.is_protobuf_message(Any)


def test_schema_of_a_message_that_contains_itself(pb2: Any) -> None:
    schema = schema_for(pb2.Tree)
    tree = {
        "title": "Tree",
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/greeter.Tree"}},
            "planted": {"type": "string", "format": "date-time"},
            "height": {"type": "integer", "format": "int32"},
            "leaves": {"type": "integer", "format": "uint64", "minimum": 0},
            "weight": {"type": "number"},
            "offset": {"type": "integer", "format": "int32"},
        },
    }
    assert schema == {**tree, "x-protobuf": "greeter.Tree", "$defs": {"greeter.Tree": tree}}


def test_endpoints_of_a_protobuf_handler(pb2: Any) -> None:
    class Greeter:
        async def hello(self, req):  # type: ignore[no-untyped-def]
            return pb2.HelloReply(msg=req.name)

    # The classes exist only now: the hints are objects, not strings to resolve.
    Greeter.hello.__annotations__ = {"req": pb2.HelloRequest, "return": pb2.HelloReply}

    (ep,) = endpoints_of(Greeter())
    assert ep.request_schema()["x-protobuf"] == "greeter.HelloRequest"
    assert ep.response_schema()["properties"]["mood"] == {
        "type": "string",
        "enum": ["MOOD_UNSPECIFIED", "HAPPY", "GRUMPY"],
    }
