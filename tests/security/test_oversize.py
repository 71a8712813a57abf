"""Issue 14, item 11: a 17 MiB body (the gateway took 100 MiB, a frame carries 16 MiB)
reset the connection the gateway shares with the service, and every other caller's call in
flight on it failed. Oversize is now refused with 413 before anything is sent, wherever
it is found too big (the gateway's limit, the wire's frame limit on the way out or on the
way back), and the calls in flight carry on."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests._support import http

from micro.testing import MicroServerProcess

GATED = Path(__file__).with_name("gated_service.py")
MIB = 1024 * 1024


def _call(server: MicroServerProcess, endpoint: str, body: Any = None) -> tuple[int, Any]:
    status, _, data = http(
        "POST", f"{server.api}/gated/Gated/{endpoint}", json.dumps(body or {}),
        headers={"content-type": "application/json"}, timeout=60,
    )  # fmt: skip
    return status, json.loads(data) if data else None


def _in_flight(server: MicroServerProcess, n: int) -> list[Any]:
    """``n`` calls waiting at the service's gate, through the gateway."""
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(_call(server, "Wait"))) for _ in range(n)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while _call(server, "Waiting")[1]["size"] < n:
        assert time.monotonic() < deadline, "the calls never reached the service"
        time.sleep(0.05)
    return [threads, results]


def test_oversize_fails_alone_and_calls_in_flight_survive(
    micro_server: MicroServerProcess,
) -> None:
    server = micro_server
    server.start_service(GATED, name="gated")
    threads, results = _in_flight(server, 3)

    # over the gateway's limit: 413 from its Content-Length, before the body is sent
    big = json.dumps({"data": "x" * (17 * MIB)})
    host, port = server.edges["api"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(
            b"POST /gated/Gated/Measure HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(big)
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    # under the gateway's limit, yet over a frame once encoded (a file in a form is base64)
    boundary = "xXx"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"f\"\r\n"
            f"\r\n{'y' * (13 * MIB)}\r\n--{boundary}--\r\n")  # fmt: skip
    status, _, data = http("POST", f"{server.api}/gated/Gated/Measure", form,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                           timeout=60)  # fmt: skip
    assert status == 413, data[:200]
    assert "frame limit" in json.loads(data)["detail"]
    # an answer over a frame: the service's 413, on the same connection
    status, out = _call(server, "Answer", {"size": 17 * MIB})
    assert status == 413, out
    # the CLI refuses to send what no frame carries
    done = server.micro("call", "gated", "Gated.Measure", "-", input=big, timeout=60)
    assert done.returncode != 0
    assert "frame limit" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

    assert _call(server, "Open")[0] == 200
    for thread in threads:
        thread.join(timeout=30)
    assert [status for status, _ in results] == [200, 200, 200], results
    assert _call(server, "Measure", {"data": "fine"}) == (200, {"size": 4})
