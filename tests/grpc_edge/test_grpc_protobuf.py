"""A handler typed with protobuf messages, end to end: gRPC clients send it protobuf through
the edge (grpcio here, with classes protoc generated), while the CLI and JSON gRPC clients
call the same endpoint with JSON; the registry shows a JSON Schema from the descriptor."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from tests._support import ok

from micro.testing import MicroServerProcess

GREETER = Path(__file__).resolve().parent / "greeter_service.py"


@pytest.fixture
def greeter(
    micro_server: MicroServerProcess, greeter_pb: tuple[Path, ModuleType, ModuleType]
) -> MicroServerProcess:
    """A server with the protobuf greeter running (its generated classes on PYTHONPATH)."""
    folder = greeter_pb[0]
    micro_server.start_service(
        GREETER, name="greeter", env=micro_server.env(PYTHONPATH=str(folder))
    )
    return micro_server


def test_grpcio_client_sends_protobuf(
    greeter: MicroServerProcess, greeter_pb: tuple[Path, ModuleType, ModuleType]
) -> None:
    _, pb2, pb2_grpc = greeter_pb
    with grpc.insecure_channel(greeter.edges["grpc"]) as channel:
        hello = channel.unary_unary(
            "/greeter.Greeter/Hello",
            request_serializer=pb2.HelloRequest.SerializeToString,
            response_deserializer=pb2.HelloReply.FromString,
        )
        request = pb2.HelloRequest(
            name="John",
            visits=2**40,
            mood=pb2.HAPPY,
            tags=["a", "bb"],
            place=pb2.Place(city="Berlin"),
        )
        reply = hello(request, timeout=10)
        assert reply.msg == "Hello John from Berlin"
        assert reply.visits == 2**40 + 1
        assert reply.mood == pb2.HAPPY
        assert dict(reply.tag_lengths) == {"a": 1, "bb": 2}
        assert reply.digest == hashlib.sha256(b"John").digest()[:4]

        # The generated stub, whose paths are the edge's: a server stream, and an empty
        # request (zero bytes, protobuf's all-defaults message).
        stub = pb2_grpc.GreeterStub(channel)
        assert [r.n for r in stub.Count(pb2.CountRequest(count=3), timeout=10)] == [0, 1, 2]
        assert list(stub.Count(pb2.CountRequest(), timeout=10)) == []


def test_malformed_protobuf_is_invalid_argument(greeter: MicroServerProcess) -> None:
    with grpc.insecure_channel(greeter.edges["grpc"]) as channel:
        hello = channel.unary_unary("/greeter.Greeter/Hello")
        with pytest.raises(grpc.RpcError) as info:
            hello(b"\xff\xff\xff", timeout=10)
    error: Any = info.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = json.loads(error.details())
    assert detail["code"] == 400
    assert detail["detail"].startswith("malformed protobuf body")
    assert dict(error.trailing_metadata())["micro-error"] == error.details()


def test_the_same_endpoint_answers_json(greeter: MicroServerProcess, node_client: Any) -> None:
    request = {"name": "Jane", "visits": "41", "mood": "GRUMPY", "tags": ["xyz"]}
    out = ok(greeter.micro("call", "greeter", "Greeter.Hello", json.dumps(request)))
    assert (
        json.loads(out)
        == {
            "msg": "Hello Jane from nowhere",
            "visits": "42",  # int64 is a string in protobuf's JSON; numbers are taken too
            "mood": "GRUMPY",
            "tag_lengths": {"xyz": 3},
            "digest": base64.b64encode(hashlib.sha256(b"Jane").digest()[:4]).decode(),
        }
    )
    out = ok(greeter.micro("call", "greeter", "Greeter.Hello", '{"name": "Jo", "visits": 1}'))
    assert json.loads(out)["visits"] == "2"

    # A gRPC client sending JSON reaches the protobuf handler too.
    (reply,) = node_client(
        greeter.edges["grpc"], "unary", "/greeter.Greeter/Hello", {"place": {"city": "Rome"}}
    )
    assert reply["msg"] == "Hello  from Rome"
    assert reply["visits"] == "1"
    counted = node_client(greeter.edges["grpc"], "server", "/greeter.Greeter/Count", {"count": 2})
    assert counted == [{"n": 0}, {"n": 1}]


def test_bad_json_for_a_protobuf_handler_is_a_400(greeter: MicroServerProcess) -> None:
    result = greeter.micro("call", "greeter", "Greeter.Hello", '{"visits": "many"}')
    assert result.returncode != 0
    assert "visits" in result.stderr
    assert "Traceback" not in result.stderr


def test_registry_shows_the_schema_from_the_descriptor(greeter: MicroServerProcess) -> None:
    (service,) = json.loads(ok(greeter.micro("get", "service", "greeter", "--output", "json")))
    endpoints = {ep["name"]: ep for ep in service["endpoints"]}
    assert set(endpoints) == {"Greeter.Hello", "Greeter.Count"}
    assert endpoints["Greeter.Count"]["metadata"] == {"stream": "true", "stream_type": "server"}
    assert endpoints["Greeter.Hello"]["request"] == {
        "title": "HelloRequest",
        "x-protobuf": "greeter.HelloRequest",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "visits": {"type": "integer", "format": "int64"},
            "mood": {"type": "string", "enum": ["MOOD_UNSPECIFIED", "HAPPY", "GRUMPY"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "place": {
                "title": "Place",
                "type": "object",
                "properties": {"city": {"type": "string"}, "lat": {"type": "number"}},
            },
        },
    }
    response = endpoints["Greeter.Hello"]["response"]["properties"]
    assert response["tag_lengths"] == {
        "type": "object",
        "additionalProperties": {"type": "integer", "format": "int32"},
    }
    assert response["digest"] == {"type": "string", "contentEncoding": "base64"}

    text = ok(greeter.micro("get", "service", "greeter"))
    assert "Endpoint: Greeter.Hello\nRequest: {\n\tname string\n\tvisits int64\n" in text
