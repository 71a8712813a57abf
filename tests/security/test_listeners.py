"""Issue 14, item 17: the listeners bounded nothing per connection. 100 connections each
half-sending a 16 MiB frame grew the server from 73 to 893 MB, and connections that sent
nothing, or headers a byte at a time, were held forever. The same attacks with real
sockets against a real server: its memory stays within the read budget, the connections
are closed, and honest clients (whose pools see idle connections closed) carry on."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support import HELLOWORLD, http
from tests.security._http import MIB, rss

from micro.testing import MicroServerProcess, start_server
from micro.wire import frames

BOUND = 60.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MicroServerProcess]:
    server = start_server(
        tmp_path / "home",
        env={
            "MICRO_WIRE_READ_BUDGET": str(20 * MIB),
            "MICRO_WIRE_FRAME_TIMEOUT": "2",
            "MICRO_WIRE_IDLE_TIMEOUT": "1",
            "MICRO_HTTP_HEADER_TIMEOUT": "2",
            "MICRO_HTTP_MAX_CONNECTIONS": "300",
        },
    )
    try:
        yield server
    finally:
        server.stop()


def _dial(address: str, n: int) -> list[socket.socket]:
    host, port = address.rsplit(":", 1)
    socks = []
    for _ in range(n):
        sock = socket.create_connection((host, int(port)), timeout=BOUND)
        sock.setblocking(False)
        socks.append(sock)
    return socks


def _push(sock: socket.socket, data: bytes) -> int:
    """Send what the kernel takes without waiting; how much that was."""
    sent = 0
    while sent < len(data):
        try:
            sent += sock.send(data[sent : sent + 256 * 1024])
        except BlockingIOError:
            break
        except OSError:  # the server hung up
            break
    return sent


def _all_closed(socks: list[socket.socket]) -> bool:
    """Wait until the server has closed every one of ``socks`` (EOF or reset)."""
    deadline = time.monotonic() + BOUND
    open_ = list(socks)
    while open_ and time.monotonic() < deadline:
        for sock in list(open_):
            try:
                if sock.recv(65536) == b"":
                    open_.remove(sock)
            except BlockingIOError:
                pass
            except OSError:
                open_.remove(sock)
        time.sleep(0.05)
    for sock in socks:
        sock.close()
    return not open_


def test_half_sent_frames_hold_the_read_budget_then_are_dropped(
    server: MicroServerProcess,
) -> None:
    before = rss(server)
    socks = _dial(server.proxy, 100)
    frame = frames.HEADER.pack(16 * MIB - 1024, 1, frames.REQUEST, 0)  # a 16 MiB request
    sent = [_push(sock, frame + b"\0" * (8 * MIB)) for sock in socks]
    for _ in range(3):  # and again, as far as the server lets them
        sent = [s + _push(sock, b"\0" * MIB) for s, sock in zip(sent, socks, strict=True)]
    grown = rss(server) - before
    assert sum(sent) > 100 * MIB  # the attack did send (the kernel took its share)
    assert grown < 20 * MIB + 60 * MIB, f"the server grew by {grown / MIB:.0f} MiB"
    assert _all_closed(socks), "late frames were not dropped"


def test_connections_that_send_nothing_or_trickle_are_closed(
    server: MicroServerProcess,
) -> None:
    native = _dial(server.proxy, 50)
    silent_http = _dial(server.edges["api"], 50)
    trickling = _dial(server.edges["api"], 50)
    for sock in trickling:
        _push(sock, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    for _ in range(10):  # a byte now and then: each resets no deadline
        for sock in trickling:
            _push(sock, b"a")
        time.sleep(0.3)
    assert _all_closed(native), "silent native connections are held"
    assert _all_closed(silent_http), "silent HTTP connections are held"
    assert _all_closed(trickling), "slow HTTP headers are held"
    status, _, _ = http("GET", f"{server.api}/")
    assert status == 200


def test_past_the_connection_limit_http_answers_503(server: MicroServerProcess) -> None:
    held = _dial(server.edges["api"], 300)
    try:
        host, port = server.edges["api"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=BOUND) as extra:
            extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == 503
    finally:
        for sock in held:
            sock.close()


def test_pools_carry_on_after_idle_connections_are_closed(
    server: MicroServerProcess,
) -> None:
    server.start_service(HELLOWORLD, name="helloworld")
    body = '{"name": "a"}'
    for _ in range(3):  # the gateway's pool to the node, and the node's to the proxy, idle
        status, _, data = http("POST", f"{server.api}/helloworld/call", body)
        assert (status, json.loads(data)) == (200, {"msg": "Hello a"})
        time.sleep(2.5)  # past the idle limit (1 s) and a sweep: the connections went away
    done = server.micro("call", "helloworld", "Helloworld.Call", body)
    assert done.returncode == 0, done.stderr
