"""Issue 14, item 20 (the edges' part): deeply nested JSON and metadata over 64 KiB were
answered 500 (a RecursionError, a ValueError escaping). They are the caller's mistakes:
clear 400s, through the gateway, the native wire (the CLI) and the gRPC edge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support import HELLOWORLD, http

from micro.testing import MicroServerProcess, start_server

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MicroServerProcess]:
    """A server whose HTTP listeners take headers past 64 KiB, so the wire's limit shows."""
    server = start_server(tmp_path / "home", env={"MICRO_HTTP_MAX_HEADER": "200000"})
    try:
        server.start_service(HELLOWORLD, name="helloworld")
        yield server
    finally:
        server.stop()


def _post(server: MicroServerProcess, path: str, body: str, **headers: str) -> tuple[int, dict]:
    status, _, data = http(
        "POST", f"{server.api}{path}", body, {"content-type": "application/json", **headers}
    )
    return status, json.loads(data)


def test_deep_nesting_through_the_gateway_is_a_400(server: MicroServerProcess) -> None:
    for path in ("/helloworld/call", "/helloworld/call?name=x"):  # passed on, and merged here
        for body in (f'{{"name": "x", "a": {DEEP_ARRAY}}}', DEEP_OBJECT):
            status, error = _post(server, path, body)
            assert (status, error["code"]) == (400, 400), error
            assert "nests too deeply" in error["detail"]


def test_metadata_over_64_kib_is_a_400_at_the_gateway_and_the_cli(
    server: MicroServerProcess,
) -> None:
    status, error = _post(server, "/helloworld/call", '{"name": "x"}', **{"X-Big": "a" * 70_000})
    assert (status, error["code"]) == (400, 400), error
    assert "metadata is too large" in error["detail"]
    done = server.micro("call", "helloworld", "Helloworld.Call", '{"name": "x"}',
                        "--metadata", f"x-big={'a' * 70_000}")  # fmt: skip
    assert done.returncode != 0
    assert "metadata is too large" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_http_header_limit_answers_431_first(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", login=False)
    try:
        status, error = _post(server, "/helloworld/call", "{}", **{"X-Big": "a" * 70_000})
        assert (status, error["code"]) == (431, 431)
        assert "MICRO_HTTP_MAX_HEADER" in error["detail"]
    finally:
        server.stop()


def test_the_grpc_edge_answers_invalid_input_never_internal(server: MicroServerProcess) -> None:
    grpc = pytest.importorskip("grpc", reason="grpcio is not installed (the grpc extra)")
    with grpc.insecure_channel(server.edges["grpc"]) as channel:
        call = channel.unary_unary("/helloworld.Helloworld/Call")
        for body in (f'{{"name": "x", "a": {DEEP_ARRAY}}}', DEEP_OBJECT):
            with pytest.raises(grpc.RpcError) as info:
                call(body.encode(), timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            call(b'{"name": "x"}', metadata=[("x-big", "a" * 70_000)], timeout=30)
        assert info.value.code() in (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert call(b'{"name": "x"}', timeout=30) == b'{"msg":"Hello x"}'
