"""Issue 14, item 10: anyone, with no account, could grow the gateway's memory without
bound: 4 MB ``Origin`` headers filled the CORS cache (RSS 536 -> 841 MB), 3,000 unknown
service names made ``/metrics`` 413 MB, and each token's issuer, each unknown service was
remembered. The same attacks against a real server now leave its memory where it was."""

from __future__ import annotations

import base64
import json
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.security._http import MIB, Client, rss

from micro.testing import MicroServerProcess, start_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MicroServerProcess]:
    """A server whose gateway answers CORS for any origin (the old default)."""
    server = start_server(tmp_path / "home", env={"MICRO_API_CORS_ORIGINS": "*"}, login=False)
    try:
        yield server
    finally:
        server.stop()


def _warm(server: MicroServerProcess, client: Client) -> int:
    for _ in range(300):
        client.request("GET", "/nosuch/call", headers={"Origin": "https://warm.example"})
    return rss(server)


def _send_raw(address: str, data: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            sock.sendall(data)
            return sock.recv(4096)
        except OSError:  # refused before all was read: the server hung up
            return b""


def test_huge_and_many_origins_grow_nothing(server: MicroServerProcess) -> None:
    client = Client(server.api)
    before = _warm(server, client)
    for _ in range(30):  # 4 MB each
        origin = "https://" + secrets.token_hex(2 * MIB) + ".example"
        answer = _send_raw(
            server.edges["api"],
            f"GET / HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\r\n".encode(),
        )
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    for _ in range(3000):  # 16 KB each, under the header limit
        origin = "https://" + secrets.token_hex(8 * 1024) + ".example"
        status, _ = client.request("GET", "/", headers={"Origin": origin})
        assert status == 200
    grown = rss(server) - before
    assert grown < 40 * MIB, f"the gateway grew by {grown / MIB:.0f} MiB"


def test_unknown_services_share_one_metric(server: MicroServerProcess) -> None:
    client = Client(server.api)
    before = _warm(server, client)
    names = [f"svc{secrets.token_hex(100)}" for _ in range(3000)]
    for name in names:
        status, _ = client.request("POST", f"/{name}/Handler/Method", b"{}")
        assert status == 404
    login = server.micro("login", "--username", "admin", "--password", server.admin_password)
    assert login.returncode == 0, login.stderr
    token = server.micro("user", "token").stdout.strip()  # /metrics: platform admins only
    status, text = client.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    assert len(text) < 50_000, f"/metrics is {len(text)} bytes"
    assert not [name for name in names[:50] if name.encode() in text]
    assert b'service="(unknown)"' in text
    grown = rss(server) - before
    assert grown < 40 * MIB, f"the gateway grew by {grown / MIB:.0f} MiB"


def test_tokens_naming_new_namespaces_grow_nothing(server: MicroServerProcess) -> None:
    client = Client(server.api)
    before = _warm(server, client)
    for _ in range(3000):  # a token-shaped header naming a new 20 KB namespace each time
        claims = json.dumps({"iss": secrets.token_hex(10 * 1024)}).encode()
        token = "e30." + base64.urlsafe_b64encode(claims).decode().rstrip("=") + ".sig"
        status, _ = client.request(
            "POST", "/helloworld/call", b"{}", headers={"Authorization": f"Bearer {token}"}
        )
        assert status in (401, 404)
    grown = rss(server) - before
    assert grown < 40 * MIB, f"the gateway grew by {grown / MIB:.0f} MiB"
