"""The gRPC edge end to end: a foreign client (Node.js grpc-js, JSON bodies) reaches services
through a real ``micro server``, in all four call shapes, with metadata, deadlines, the
auth door and Micro's errors as gRPC statuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._support import HELLOWORLD, ok

from micro.testing import MicroServerProcess, start_server

EDGE_SERVICE = Path(__file__).resolve().parent / "edge_service.py"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicroServerProcess]:
    """One server for the tests that change nothing, with helloworld and edgetest running."""
    server = start_server(tmp_path_factory.mktemp("grpc-edge") / "micro-home")
    try:
        server.start_service(HELLOWORLD, name="helloworld")
        server.start_service(EDGE_SERVICE, name="edgetest")
        yield server
    finally:
        server.stop()


def _error(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The error a failed call ends with: ``grpc`` (its status name) and the fields of the
    Micro error JSON it carries in its details and its ``micro-error`` trailer."""
    assert lines, "the client printed nothing"
    last = lines[-1]
    assert set(last) == {"code", "details", "micro_error"}, last
    assert last["details"] == last["micro_error"]
    assert "Traceback" not in last["details"]
    return {"grpc": last["code"], **json.loads(last["details"])}


# -- the four shapes ------------------------------------------------------------------------


def test_unary(platform: MicroServerProcess, node_client: Any) -> None:
    out = node_client(
        platform.edges["grpc"], "unary", "/helloworld.Helloworld/Call", {"name": "John"}
    )
    assert out == [{"msg": "Hello John"}]


def test_server_stream(platform: MicroServerProcess, node_client: Any) -> None:
    out = node_client(
        platform.edges["grpc"], "server", "/helloworld.Helloworld/Stream", {"count": 3}
    )
    assert out == [{"count": 0}, {"count": 1}, {"count": 2}]


def test_client_stream(platform: MicroServerProcess, node_client: Any) -> None:
    nums = [{"n": 1}, {"n": 2}, {"n": 39}]
    out = node_client(platform.edges["grpc"], "client", "/edgetest.Edge/Sum", nums)
    assert out == [{"total": 42, "count": 3}]


def test_streams_without_messages(platform: MicroServerProcess, node_client: Any) -> None:
    # Nothing to tell JSON from protobuf by: the endpoint's schema decides (JSON here).
    grpc_address = platform.edges["grpc"]
    assert node_client(grpc_address, "client", "/edgetest.Edge/Sum", []) == [
        {"total": 0, "count": 0}
    ]
    assert node_client(grpc_address, "bidi", "/helloworld.Helloworld/PingPong", []) == []


def test_bidi_stream(platform: MicroServerProcess, node_client: Any) -> None:
    pings = [{"stroke": i} for i in range(5)]
    out = node_client(platform.edges["grpc"], "bidi", "/helloworld.Helloworld/PingPong", pings)
    assert out == pings


# -- metadata and deadlines -----------------------------------------------------------------


def test_metadata_and_deadline_reach_the_service(
    platform: MicroServerProcess, node_client: Any
) -> None:
    (seen,) = node_client(
        platform.edges["grpc"],
        "unary",
        "/edgetest.Edge/Echo",
        {},
        {"x-trace": "abc", "X-Upper": "kept", "x-data-bin": "dropped"},
        8_000,
    )
    metadata = seen["metadata"]
    assert metadata["x-trace"] == "abc"
    assert metadata["x-upper"] == "kept"
    assert not [k for k in metadata if k.endswith("-bin") or k.startswith("grpc-")]
    assert "accept-encoding" not in metadata
    assert 0 < seen["deadline_left"] <= 8.0


def test_the_callers_trace_goes_on_through_the_edge(
    platform: MicroServerProcess, node_client: Any
) -> None:
    # W3C traceparent as gRPC metadata: the service's call is in the caller's trace
    # (issue 16); the edge hands the caller's context on as it came.
    trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    (seen,) = node_client(
        platform.edges["grpc"],
        "unary",
        "/edgetest.Edge/Echo",
        {},
        {"traceparent": f"00-{trace}-{span}-01"},
    )
    assert seen["metadata"]["traceparent"] == f"00-{trace}-{span}-01"


def test_the_platform_says_who_and_where_not_the_client(
    platform: MicroServerProcess, node_client: Any
) -> None:
    forged = {"micro-caller-id": "admin", "micro-remote-address": "10.9.9.9:1"}
    (seen,) = node_client(platform.edges["grpc"], "unary", "/edgetest.Edge/Echo", {}, forged)
    metadata = seen["metadata"]
    assert "micro-caller-id" not in metadata
    assert metadata["micro-remote-address"].startswith("127.0.0.1:")


def test_deadline_exceeded(platform: MicroServerProcess, node_client: Any) -> None:
    out = node_client(
        platform.edges["grpc"], "unary", "/edgetest.Edge/Sleep", {"seconds": 30}, None, 300
    )
    assert out[-1]["code"] == "DEADLINE_EXCEEDED"


# -- errors ---------------------------------------------------------------------------------


def test_unknown_service_is_not_found(platform: MicroServerProcess, node_client: Any) -> None:
    error = _error(node_client(platform.edges["grpc"], "unary", "/nosuch.Foo/Bar", {}))
    assert error["grpc"] == "NOT_FOUND"
    assert error["detail"] == "service nosuch not found"
    assert error["status"] == "Not Found"


def test_unknown_method_is_the_services_answer(
    platform: MicroServerProcess, node_client: Any
) -> None:
    error = _error(node_client(platform.edges["grpc"], "unary", "/helloworld.Helloworld/Nope", {}))
    assert error["grpc"] == "NOT_FOUND"
    assert error["id"] == "micro.server"
    assert "Helloworld.Nope" in error["detail"]


def test_malformed_path_is_unimplemented(platform: MicroServerProcess, node_client: Any) -> None:
    error = _error(node_client(platform.edges["grpc"], "unary", "/nodot/Call", {}))
    assert error["grpc"] == "UNIMPLEMENTED"
    assert "expected /<service>.<Handler>/<Method>" in error["detail"]


def test_bad_request_body_is_invalid_argument(
    platform: MicroServerProcess, node_client: Any
) -> None:
    error = _error(
        node_client(platform.edges["grpc"], "unary", "/helloworld.Helloworld/Call", {"name": 7})
    )
    assert error["grpc"] == "INVALID_ARGUMENT"
    assert "name" in error["detail"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (408, "DEADLINE_EXCEEDED"),
        (409, "ALREADY_EXISTS"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (501, "UNIMPLEMENTED"),
        (503, "UNAVAILABLE"),
        (418, "INTERNAL"),
    ],
)
def test_service_errors_become_grpc_statuses(
    platform: MicroServerProcess, node_client: Any, code: int, status: str
) -> None:
    request = {"code": code, "detail": f"failed with {code}"}
    error = _error(node_client(platform.edges["grpc"], "unary", "/edgetest.Edge/Fail", request))
    assert error["grpc"] == status
    assert error["code"] == code
    assert error["id"] == "edgetest.Edge.Fail"
    assert error["detail"] == f"failed with {code}"


# -- the auth door --------------------------------------------------------------------------


def test_the_door_admits_tokens_and_applies_rules(
    micro_server: MicroServerProcess, node_client: Any
) -> None:
    server = micro_server
    server.start_service(HELLOWORLD, name="helloworld")
    ok(server.micro("auth", "create", "rule", "--scope=*", "--resource=*:*:*", "onlyloggedin"))
    ok(server.micro("auth", "create", "rule", "--resource=service:auth:*", "auth-public"))
    ok(server.micro("auth", "delete", "rule", "default"))
    token = ok(server.micro("user", "token")).strip()
    grpc_address = server.edges["grpc"]
    call = "/helloworld.Helloworld/Call"

    anonymous = _error(node_client(grpc_address, "unary", call, {"name": "x"}))
    assert anonymous["grpc"] == "UNAUTHENTICATED"
    assert anonymous["detail"] == "Unauthorized call made to helloworld:Helloworld.Call"

    bearer = {"authorization": f"Bearer {token}"}
    assert node_client(grpc_address, "unary", call, {"name": "Jane"}, bearer) == [
        {"msg": "Hello Jane"}
    ]
    assert node_client(
        grpc_address, "server", "/helloworld.Helloworld/Stream", {"count": 1}, bearer
    ) == [{"count": 0}]

    ok(
        server.micro(
            "auth",
            "create",
            "rule",
            "--access=denied",
            "--priority=10",
            "--scope=*",
            "--resource=service:helloworld:Helloworld.Call",
            "no-call",
        )
    )
    denied = _error(node_client(grpc_address, "unary", call, {"name": "Jane"}, bearer))
    assert denied["grpc"] == "PERMISSION_DENIED"
    assert denied["detail"].startswith("Forbidden call made to helloworld:Helloworld.Call by ")
