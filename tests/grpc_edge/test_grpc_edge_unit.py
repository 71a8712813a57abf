"""The gRPC edge's parts, in process: method paths, status codes, metadata, the content-type
guess, and the edge itself (grpcio's own client) in front of a recording upstream."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from micro import codec, errors
from micro.registry.base import Endpoint, Node, Service
from micro.registry.memory import MemoryRegistry
from micro.routing import RouteTable
from micro.server.grpc_edge import (
    CONTENT_TYPE_KEY,
    GrpcEdge,
    Route,
    call_metadata,
    content_type_of,
    create,
    parse_method,
    status_name,
)
from micro.settings import load
from micro.wire import frames
from micro.wire.stream import Stream

# -- pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/helloworld.Helloworld/Call", Route("helloworld", "Helloworld.Call")),
        ("/go.micro.srv.greeter.Greeter/Hello", Route("go.micro.srv.greeter", "Greeter.Hello")),
        ("/a.B/C", Route("a", "B.C")),
    ],
)
def test_parse_method(path: str, route: Route) -> None:
    assert parse_method(path) == route


@pytest.mark.parametrize(
    "path",
    ["", "/", "helloworld.Helloworld/Call", "/Helloworld/Call", "/.Helloworld/Call",
     "/helloworld./Call", "/helloworld.Helloworld/", "/helloworld.Helloworld/Call/x"],
)  # fmt: skip
def test_parse_method_refuses_malformed_paths(path: str) -> None:
    with pytest.raises(ValueError, match=r"expected /<service>\.<Handler>/<Method>") as info:
        parse_method(path)
    assert repr(path) in str(info.value)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (408, "DEADLINE_EXCEEDED"),
        (409, "ALREADY_EXISTS"),
        (429, "RESOURCE_EXHAUSTED"),
        (501, "UNIMPLEMENTED"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (500, "INTERNAL"),
        (405, "INTERNAL"),
        (418, "INTERNAL"),
        (499, "INTERNAL"),
    ],
)
def test_status_for_each_code(code: int, status: str) -> None:
    assert status_name(code) == status
    assert grpc.StatusCode[status_name(code)].name == status


def test_call_metadata() -> None:
    pairs: list[tuple[str, str | bytes]] = [
        ("authorization", "Bearer t"),
        ("micro-namespace", "foo"),
        ("X-Trace", "1"),
        ("x-many", "a"),
        ("x-many", "b"),
        ("grpc-accept-encoding", "gzip"),
        ("grpc-timeout", "1S"),
        ("accept-encoding", "identity"),
        ("te", "trailers"),
        ("x-data-bin", b"\x00"),
        ("x-odd-bin", "AA=="),
    ]
    assert call_metadata(pairs) == {
        "authorization": "Bearer t",
        "micro-namespace": "foo",
        "x-trace": "1",
        "x-many": "a,b",
    }


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"name": "x"}', codec.JSON),
        (b"[1, 2]", codec.JSON),
        (b"", codec.PROTOBUF),  # the all-defaults message; JSON is never empty
        (b"\n\x01x", codec.PROTOBUF),  # field 1, a string: starts with "\n"
        (b"\n{", codec.PROTOBUF),  # ...of 123 bytes: whitespace then a brace is protobuf
        (b" {}", codec.PROTOBUF),  # field 4, a varint
        (b"\x08\x01", codec.PROTOBUF),
    ],
)
def test_content_type_of(body: bytes, content_type: str) -> None:
    assert content_type_of(body) == content_type


def test_content_type_of_no_message_follows_the_endpoint() -> None:
    assert content_type_of(None) == codec.PROTOBUF
    assert content_type_of(None, takes_protobuf=False) == codec.JSON
    assert content_type_of(b"{}", takes_protobuf=True) == codec.JSON


def test_create_is_none_when_off_or_without_grpcio(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load({"MICRO_GRPC_ADDRESS": "off"})
    assert create(settings, _Recorder(), RouteTable(MemoryRegistry())) is None
    settings = load({"MICRO_GRPC_ADDRESS": "127.0.0.1:0"})
    assert isinstance(create(settings, _Recorder(), RouteTable(MemoryRegistry())), GrpcEdge)
    monkeypatch.setitem(sys.modules, "grpc", None)  # what an absent grpcio looks like
    assert create(settings, _Recorder(), RouteTable(MemoryRegistry())) is None


# -- the edge in front of a recording upstream ----------------------------------------------


@dataclasses.dataclass
class _Recorder:
    """An upstream that records calls and answers ``answer`` (or raises it)."""

    answer: bytes | Exception = b'{"ok":true}'
    calls: list[tuple[str, frames.RequestHeader, bytes | None]] = dataclasses.field(
        default_factory=list
    )

    async def unary(self, header: frames.RequestHeader, body: bytes) -> bytes:
        self.calls.append(("unary", header, body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def open_stream(self, header: frames.RequestHeader, first: bytes | None) -> Stream:
        self.calls.append(("stream", header, first))
        raise errors.ServiceUnavailable("test", "no streams here")


class _CountingRegistry(MemoryRegistry):
    lookups = 0

    async def get_service(self, name: str, *, domain: str = "micro") -> list[Service]:
        self.lookups += 1
        return await super().get_service(name, domain=domain)


@pytest.fixture
async def edge() -> AsyncIterator[tuple[_Recorder, _CountingRegistry, grpc.aio.Channel]]:
    upstream = _Recorder()
    registry = _CountingRegistry()
    routes = RouteTable(registry)
    routes.start()
    server = GrpcEdge("127.0.0.1:0", upstream, routes)
    address = await server.start()
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            yield upstream, registry, channel
    finally:
        await server.stop()
        await routes.stop()


Edge = tuple[_Recorder, _CountingRegistry, Any]


async def _status(call: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(status, parsed details, trailing metadata) of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    error = info.value
    trailers = dict(error.trailing_metadata() or ())
    return error.code(), json.loads(error.details() or ""), trailers


async def test_unary_call_is_relayed(edge: Edge) -> None:
    upstream, _, channel = edge
    metadata = (
        ("authorization", "Bearer t"),
        ("micro-namespace", "foo"),
        ("x-trace", "1"),
        ("x-data-bin", b"\x00"),
    )
    reply = await channel.unary_unary("/svc.Handler/Method")(
        b'{"a":1}', metadata=metadata, timeout=5
    )
    assert reply == b'{"ok":true}'
    ((how, header, body),) = upstream.calls
    assert (how, body) == ("unary", b'{"a":1}')
    assert (header.service, header.endpoint) == ("svc", "Handler.Method")
    assert header.content_type == codec.JSON
    assert 0 < header.timeout <= 5000
    remote = header.metadata.pop("micro-remote-address")
    assert remote.startswith("127.0.0.1:")
    assert {k: v for k, v in header.metadata.items() if k != "user-agent"} == {
        "authorization": "Bearer t",
        "micro-namespace": "foo",
        "x-trace": "1",
    }


async def test_protobuf_bodies_and_the_explicit_content_type(edge: Edge) -> None:
    upstream, _, channel = edge
    method = channel.unary_unary("/svc.Handler/Method")
    await method(b"\n\x01x")
    await method(b"")
    await method(b" {}", metadata=((CONTENT_TYPE_KEY, codec.JSON),))
    types = [header.content_type for _, header, _ in upstream.calls]
    assert types == [codec.PROTOBUF, codec.PROTOBUF, codec.JSON]
    assert CONTENT_TYPE_KEY not in upstream.calls[2][1].metadata
    assert upstream.calls[0][1].timeout == 0  # no gRPC deadline, no timeout


async def test_micro_errors_become_statuses(edge: Edge) -> None:
    upstream, _, channel = edge
    upstream.answer = errors.new("svc.Handler.Method", "slow down", 429)
    code, details, trailers = await _status(channel.unary_unary("/svc.Handler/Method")(b"{}"))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details == {"id": "svc.Handler.Method", "code": 429, "detail": "slow down", "status": "Too Many Requests"}  # fmt: skip
    assert json.loads(trailers["micro-error"]) == details


async def test_unexpected_failures_are_internal_without_a_traceback(edge: Edge) -> None:
    upstream, _, channel = edge
    upstream.answer = RuntimeError("secret internals")
    code, details, _ = await _status(channel.unary_unary("/svc.Handler/Method")(b"{}"))
    assert code == grpc.StatusCode.INTERNAL
    assert details["detail"] == "internal error in the gRPC edge"
    assert "secret" not in json.dumps(details)


async def test_a_unary_method_takes_one_message(edge: Edge) -> None:
    upstream, _, channel = edge
    code, details, _ = await _status(
        channel.stream_unary("/svc.Handler/Method")(iter([b"{}", b"{}"]))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details["detail"] == "this method takes exactly one request message"
    assert upstream.calls == []


async def test_malformed_path(edge: Edge) -> None:
    _, _, channel = edge
    code, details, trailers = await _status(channel.unary_unary("/nodot/Method")(b"{}"))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert details["code"] == 501
    assert "'/nodot/Method'" in details["detail"]
    assert "micro-error" in trailers


async def test_the_registry_says_how_to_call(edge: Edge) -> None:
    upstream, registry, channel = edge
    endpoints = [
        Endpoint(name="H.Feed", metadata={"stream": "true", "stream_type": "server"}),
        Endpoint(name="H.Sink", metadata={"stream": "true", "stream_type": "client"}),
        Endpoint(
            name="H.Pb",
            request={"x-protobuf": "pkg.Req"},
            metadata={"stream": "true", "stream_type": "client"},
        ),
    ]
    node = Node(id="n1", address="127.0.0.1:1")
    await registry.register(Service(name="svc", endpoints=endpoints, nodes=[node]))

    feed, sink = channel.unary_stream("/svc.H/Feed"), channel.stream_unary("/svc.H/Sink")
    # One after the other (the order is asserted); the recorder answers each with a 503.
    assert await _finish(feed(b'{"n":1}')) == grpc.StatusCode.UNAVAILABLE
    assert await _finish(sink(iter([b'{"n":1}', b'{"n":2}']))) == grpc.StatusCode.UNAVAILABLE
    assert await _finish(sink(iter([]))) == grpc.StatusCode.UNAVAILABLE
    pb = channel.stream_unary("/svc.H/Pb")
    assert await _finish(pb(iter([]))) == grpc.StatusCode.UNAVAILABLE
    seen = [(how, h.endpoint, h.content_type, first) for how, h, first in upstream.calls]
    assert seen == [
        ("stream", "H.Feed", codec.JSON, b'{"n":1}'),  # a server stream opens with its request
        ("stream", "H.Sink", codec.JSON, None),  # a client stream sends its messages after
        ("stream", "H.Sink", codec.JSON, None),  # no message: the endpoint's types decide
        ("stream", "H.Pb", codec.PROTOBUF, None),
    ]
    assert registry.lookups == 1  # cached per service


async def test_start_fails_clearly_on_a_port_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = GrpcEdge(f"127.0.0.1:{port}", _Recorder(), RouteTable(MemoryRegistry()))
        with pytest.raises(OSError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
            await server.start()
        await server.stop()


def test_grpc_and_protobuf_are_imported_only_when_used() -> None:
    script = (
        "import sys, msgspec\n"
        "from micro import codec\n"
        "from micro.rpc.schema import schema_for\n"
        "import micro.server.grpc_edge\n"
        "class P(msgspec.Struct):\n"
        "    x: int\n"
        "for ct in (codec.JSON, codec.MSGPACK):\n"
        "    c = codec.codec_for(ct)\n"
        "    assert c.decode(c.encode(P(1)), P) == P(1)\n"
        "schema_for(P)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_a_changed_service_is_looked_up_again(edge: Edge) -> None:
    upstream, registry, channel = edge
    node = Node(id="n1", address="127.0.0.1:1")
    await registry.register(Service(name="svc", endpoints=[Endpoint(name="H.M")], nodes=[node]))
    method = channel.unary_stream("/svc.H/M")
    assert await _finish(method(b"{}")) == grpc.StatusCode.OK  # the recorder's unary answer
    streaming = Endpoint(name="H.M", metadata={"stream": "true", "stream_type": "server"})
    await registry.register(Service(name="svc", endpoints=[streaming], nodes=[node]))
    async with asyncio.timeout(10):  # the registry's watch tells the edge, soon
        while upstream.calls[-1][0] != "stream":
            await _finish(method(b"{}"))
    assert registry.lookups == 2


async def _finish(call: Any) -> Any:
    """Read a call to its end (grpcio gives a status only after the messages); its status."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    return await call.code()
