"""The HTTP gateway against a real server: paths, bodies, metadata, namespaces, auth,
errors, CORS, streaming (SSE, JSON lines, WebSocket), OpenAPI and metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._support import HELLOWORLD, http, ok

from micro.testing import MicroServerProcess, start_server

ECHO = Path(__file__).with_name("echo_service.py")


@pytest.fixture
def gateway(micro_server: MicroServerProcess) -> Iterator[MicroServerProcess]:
    micro_server.start_service(HELLOWORLD, name="helloworld")
    micro_server.start_service(ECHO, name="echo")
    return micro_server


def get_json(url: str, **headers: str) -> tuple[int, Any]:
    status, _, body = http("GET", url, headers=headers)
    return status, json.loads(body) if body else None


def post_json(url: str, body: str, **headers: str) -> tuple[int, Any]:
    status, _, data = http(
        "POST", url, body, headers={"content-type": "application/json", **headers}
    )
    return status, json.loads(data) if data else None


def test_the_issue_examples(gateway: MicroServerProcess) -> None:
    api = gateway.api
    assert get_json(f"{api}/helloworld?name=John") == (200, {"msg": "Hello John"})
    # curl -d sends application/x-www-form-urlencoded; a JSON body is still JSON
    status, _, body = http(
        "POST",
        f"{api}/helloworld/call",
        '{"name":"John"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (status, json.loads(body)) == (200, {"msg": "Hello John"})
    assert get_json(f"{api}/helloworld/Helloworld/Call?name=Joe") == (200, {"msg": "Hello Joe"})
    status, version = get_json(f"{api}/")
    assert status == 200
    assert set(version) == {"version"}


def test_query_form_and_json_bodies_reach_the_service(gateway: MicroServerProcess) -> None:
    api = gateway.api
    status, out = get_json(f"{api}/echo/call?name=123&count=4&tags=a&tags=b&item.id=x")
    assert status == 200
    assert out["request"] == {"name": "123", "count": 4, "tags": ["a", "b"], "item": {"id": "x"}}
    status, out = post_json(f"{api}/echo/call?count=1", '{"name":"body"}')
    assert out["request"]["name"] == "body"
    assert out["request"]["count"] == 1
    status, _, data = http(
        "POST",
        f"{api}/echo/call",
        "name=form&count=2",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert json.loads(data)["request"]["name"] == "form"


def test_headers_travel_as_metadata(gateway: MicroServerProcess) -> None:
    status, out = get_json(f"{gateway.api}/echo/call", **{"X-Trace-Id": "t-1"})
    assert status == 200
    assert out["metadata"]["x-trace-id"] == "t-1"
    assert out["metadata"]["micro-namespace"] == "micro"


def test_what_only_the_platform_says_is_never_the_clients(gateway: MicroServerProcess) -> None:
    forged = {
        "Micro-Caller-Id": "admin",
        "Micro-Caller-Scopes": "admin",
        "Micro-Remote-Address": "10.9.9.9:1",
        "Proxy-Authorization": "Basic eDp5",
        "Cookie": "theme=dark; micro-token=t; __Host-micro-csrf=c; Micro-Refresh=r",
    }
    status, out = get_json(f"{gateway.api}/echo/call", **forged)
    assert status == 200
    metadata = out["metadata"]
    assert not [k for k in metadata if k.startswith("micro-caller-") or k.startswith("proxy-")]
    assert metadata["micro-remote-address"].startswith("127.0.0.1:")
    assert metadata["cookie"] == "theme=dark"


def test_errors_are_micro_json_with_their_status(gateway: MicroServerProcess) -> None:
    api = gateway.api
    status, out = get_json(f"{api}/nosuch/call")
    assert status == 404
    assert out == {
        "id": "micro.api",
        "code": 404,
        "detail": "service nosuch not found",
        "status": "Not Found",
    }
    status, out = get_json(f"{api}/helloworld/nope")
    assert (status, out["code"]) == (404, 404)
    assert "Helloworld.Nope" in out["detail"]
    status, out = post_json(f"{api}/helloworld/call", '{"name":')
    assert status == 400
    assert out["detail"].startswith("malformed JSON body")
    status, out = post_json(f"{api}/helloworld/call", '{"name": 5}')
    assert status == 400
    assert "name" in out["detail"]
    status, out = post_json(f"{api}/echo/sum", "{}")
    assert status == 400
    assert "WebSocket" in out["detail"]


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", env={"MICRO_API_MAX_BODY": "1000"})
    try:
        server.start_service(HELLOWORLD, name="helloworld")
        status, out = post_json(f"{server.api}/helloworld/call", json.dumps({"name": "x" * 2000}))
        assert status == 413
        assert out["status"] == "Request Entity Too Large"
        assert post_json(f"{server.api}/helloworld/call", '{"name":"ok"}')[0] == 200
    finally:
        server.stop()


def test_namespace_from_header_token_and_rules(gateway: MicroServerProcess) -> None:
    api = gateway.api
    # another namespace has no helloworld
    status, out = get_json(f"{api}/helloworld?name=x", **{"Micro-Namespace": "other"})
    assert status in (401, 404)
    # lock helloworld down: only accounts may call it
    ok(gateway.micro("auth", "create", "rule", "hw", "--scope", "*", "--priority", "20",
                     "--resource", "service:helloworld:*"))  # fmt: skip
    ok(gateway.micro("auth", "create", "rule", "hw-public", "--scope", "", "--priority", "10",
                     "--access", "denied", "--resource", "service:helloworld:*"))  # fmt: skip
    status, out = get_json(f"{api}/helloworld?name=x")
    assert status == 401
    assert out["status"] == "Unauthorized"
    token = ok(gateway.micro("user", "token")).strip()
    assert get_json(f"{api}/helloworld?name=x", Authorization=f"Bearer {token}") == (
        200,
        {"msg": "Hello x"},
    )
    # the dashboard's cookie is no credential here (any page on the host could use it)
    status, out = get_json(f"{api}/helloworld?name=y", Cookie=f"a=b; micro-token={token}")
    assert status == 401
    status, out = get_json(f"{api}/helloworld?name=x", Authorization="Bearer not-a-token")
    assert status == 401


def test_cors_is_off_by_default(gateway: MicroServerProcess) -> None:
    status, headers, body = http(
        "OPTIONS", f"{gateway.api}/helloworld/call", headers={"Origin": "https://app.example"}
    )
    assert (status, body) == (200, b"")
    assert not [h for h in headers if h.startswith("access-control-")]
    _, headers, _ = http("GET", f"{gateway.api}/helloworld?name=x", headers={"Origin": "null"})
    assert not [h for h in headers if h.startswith("access-control-")]


def test_cors_for_listed_origins_or_any_never_with_credentials(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "home", env={"MICRO_API_CORS_ORIGINS": "https://a.example"}, login=False
    )
    try:
        _, headers, _ = http("GET", f"{server.api}/", headers={"Origin": "https://b.example"})
        assert "access-control-allow-origin" not in headers
        assert headers["vary"] == "Origin"
        status, headers, _ = http(
            "OPTIONS", f"{server.api}/helloworld/call", headers={"Origin": "https://a.example"}
        )
        assert status == 200
        assert headers["access-control-allow-origin"] == "https://a.example"
        assert "Micro-Namespace" in headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in headers
    finally:
        server.stop()
    server = start_server(tmp_path / "any", env={"MICRO_API_CORS_ORIGINS": "*"}, login=False)
    try:
        _, headers, _ = http("GET", f"{server.api}/", headers={"Origin": "https://b.example"})
        assert headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in headers
    finally:
        server.stop()


def test_server_streams_as_sse_and_json_lines(gateway: MicroServerProcess) -> None:
    status, headers, body = http(
        "POST", f"{gateway.api}/echo/count", '{"count":3}', headers={"Accept": "text/event-stream"}
    )
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    assert body == b'data: {"n":0}\n\ndata: {"n":1}\n\ndata: {"n":2}\n\n'
    status, headers, body = http("GET", f"{gateway.api}/echo/count?count=2")
    assert headers["content-type"] == "application/x-ndjson"
    assert body.splitlines() == [b'{"n":0}', b'{"n":1}']


def test_websockets_for_every_kind(gateway: MicroServerProcess) -> None:
    from websockets.sync.client import connect

    ws_base = gateway.api.replace("http://", "ws://")
    with connect(f"{ws_base}/echo/count") as ws:
        ws.send('{"count": 2}')
        assert [json.loads(ws.recv(timeout=10)) for _ in range(2)] == [{"n": 0}, {"n": 1}]
    with connect(f"{ws_base}/echo/sum") as ws:
        for n in (1, 2, 3):
            ws.send(json.dumps({"count": n}))
            assert json.loads(ws.recv(timeout=10)) == {"total": sum(range(n + 1))}
    with connect(f"{ws_base}/helloworld/call") as ws:
        ws.send('{"name": "ws"}')
        assert json.loads(ws.recv(timeout=10)) == {"msg": "Hello ws"}
    with connect(f"{ws_base}/nosuch/call") as ws:
        error = json.loads(ws.recv(timeout=10))
        assert error["code"] == 404


def test_openapi_describes_every_endpoint(gateway: MicroServerProcess) -> None:
    status, doc = get_json(f"{gateway.api}/openapi.json")
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    call = doc["paths"]["/helloworld/Helloworld/Call"]["post"]
    schema = call["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["name"] == {"type": "string"}
    assert "/echo/Echo/Sum" not in doc["paths"]  # bidi: WebSocket only
    assert doc["paths"]["/echo/Echo/Count"]["post"]["responses"]["200"]["content"] == {
        "application/x-ndjson": {
            "schema": {"type": "object", "additionalProperties": {"type": "integer"}}
        }
    }
    ref = doc["paths"]["/echo/Echo/Call"]["post"]["requestBody"]["content"]["application/json"]
    assert "echo.Item" in doc["components"]["schemas"], ref


def test_metrics_count_requests(gateway: MicroServerProcess) -> None:
    get_json(f"{gateway.api}/helloworld?name=x")
    get_json(f"{gateway.api}/helloworld/nope")
    assert http("GET", f"{gateway.api}/metrics")[0] == 401  # platform admins only
    token = ok(gateway.micro("user", "token")).strip()
    auth = {"Authorization": f"Bearer {token}"}
    status, _headers, body = http("GET", f"{gateway.api}/metrics", headers=auth)
    assert status == 200
    text = body.decode()
    line = 'micro_api_requests_total{service="helloworld",endpoint="Helloworld.Call",code="200"}'
    assert line in text
    assert 'code="404"' in text
    assert "micro_api_request_duration_seconds_bucket" in text
    assert 'micro_requests_total{service="registry"' in text  # the core services' too


def test_routes_follow_the_registry(micro_server: MicroServerProcess) -> None:
    """A 404 is not remembered past the registration that makes it wrong."""
    assert get_json(f"{micro_server.api}/helloworld?name=x")[0] == 404
    proc = micro_server.start_service(HELLOWORLD, name="helloworld")
    deadline = time.monotonic() + 10
    while get_json(f"{micro_server.api}/helloworld?name=x")[0] != 200:
        assert time.monotonic() < deadline, "the gateway never saw the new service"
        time.sleep(0.05)
    proc.terminate()
    proc.wait(timeout=10)
    assert get_json(f"{micro_server.api}/helloworld?name=x")[0] in (404, 503)


def test_the_gateway_runs_alone(gateway: MicroServerProcess, tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "micro", "service", "api", "--address", "127.0.0.1:0"],
        env=gateway.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:
            if "micro service api ready: " in line:
                break
        address = line.split("ready: ")[1].strip()
        assert get_json(f"http://{address}/helloworld?name=alone") == (200, {"msg": "Hello alone"})
    finally:
        proc.terminate()
        proc.wait(timeout=15)
