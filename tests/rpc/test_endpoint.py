"""Endpoints from handler objects: names, the four call shapes, and mistakes caught early."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any

import msgspec
import pytest

from micro.rpc import endpoints_of
from micro.rpc.endpoint import Endpoint, endpoint_name


class Req(msgspec.Struct):
    name: str


class Resp(msgspec.Struct):
    msg: str


class Shapes:
    """One method of each shape, plus what must not become an endpoint."""

    greeting = "not callable"

    async def call(self, req: Req) -> Resp:
        return Resp(req.name)

    async def server_stream(self, req: Req) -> AsyncIterator[Resp]:
        yield Resp(req.name)

    async def client_stream(self, reqs: AsyncIterator[Req]) -> Resp:
        return Resp("")

    async def bidi_stream(self, reqs: AsyncIterable[Req]) -> AsyncGenerator[Resp, None]:
        async for r in reqs:
            yield Resp(r.name)

    async def ping_pong(self) -> str:
        return "pong"

    async def _hidden(self, req: Req) -> Resp:
        return Resp("")

    def _sync_helper(self) -> None:
        return None

    class Nested:
        pass


def _by_name(handler: object, **kwargs: Any) -> dict[str, Endpoint]:
    return {ep.name: ep for ep in endpoints_of(handler, **kwargs)}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("call", "Helloworld.Call"),
        ("ping_pong", "Helloworld.PingPong"),
        ("get__user_", "Helloworld.GetUser"),
        ("list_HTTP_routes", "Helloworld.ListHTTPRoutes"),
        ("x", "Helloworld.X"),
    ],
)
def test_method_names_become_endpoint_names(method: str, expected: str) -> None:
    assert endpoint_name("Helloworld", method) == expected


def test_public_async_methods_are_the_endpoints() -> None:
    assert sorted(_by_name(Shapes())) == [
        "Shapes.BidiStream",
        "Shapes.Call",
        "Shapes.ClientStream",
        "Shapes.PingPong",
        "Shapes.ServerStream",
    ]


def test_handler_name_can_be_given() -> None:
    assert "Greeter.Call" in _by_name(Shapes(), name="Greeter")


@pytest.mark.parametrize(
    ("name", "kind", "request_type", "response_type"),
    [
        ("Shapes.Call", "unary", Req, Resp),
        ("Shapes.ServerStream", "server", Req, Resp),
        ("Shapes.ClientStream", "client", Req, Resp),
        ("Shapes.BidiStream", "bidi", Req, Resp),
        ("Shapes.PingPong", "unary", Any, str),
    ],
)
def test_the_shape_of_a_method_gives_its_kind(
    name: str, kind: str, request_type: Any, response_type: Any
) -> None:
    ep = _by_name(Shapes())[name]
    assert ep.kind == kind
    assert ep.request_type is request_type
    assert ep.response_type is response_type
    assert ep.streams == (kind != "unary")
    if kind == "unary":
        assert ep.metadata == {}
    else:
        assert ep.metadata == {"stream": "true", "stream_type": kind}


def test_endpoint_without_a_parameter_takes_no_request() -> None:
    eps = _by_name(Shapes())
    assert not eps["Shapes.PingPong"].takes_request
    assert eps["Shapes.Call"].takes_request


class SyncMethod:
    async def fine(self, req: Req) -> Resp:
        return Resp("")

    def oops_sync(self, req: Req) -> Resp:
        return Resp("")


class TwoParams:
    async def add_two(self, a: int, b: int) -> int:
        return a + b


def test_sync_method_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="async def") as info:
        endpoints_of(SyncMethod())
    assert "SyncMethod.oops_sync" in str(info.value)


def test_two_parameters_is_a_type_error_naming_the_endpoint() -> None:
    with pytest.raises(TypeError, match="at most one parameter") as info:
        endpoints_of(TwoParams())
    assert "TwoParams.AddTwo" in str(info.value)


class Unresolvable:
    async def broken(self, req: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None


def test_unresolvable_hints_are_a_type_error_naming_the_endpoint() -> None:
    with pytest.raises(TypeError, match=r"Unresolvable\.Broken"):
        endpoints_of(Unresolvable())
