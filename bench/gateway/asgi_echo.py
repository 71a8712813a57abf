"""The bare ASGI JSON echo the gateway is measured against: the helloworld logic (decode
``{"name"}``, answer ``{"msg": "Hello <name>"}``) as a raw ASGI app on the same uvicorn
set-up as the gateway (uvloop, httptools, no access log), in one process.

    python bench/gateway/asgi_echo.py [--port 0]
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import msgspec
import uvicorn

from bench._serve import announce_ready, start_watchdog

_decode = msgspec.json.decode
_encode = msgspec.json.encode
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = _decode(body) if body else {}
    data = _encode({"msg": f"Hello {request.get('name', '')}"})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_HEADERS, (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    start_watchdog()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    announce_ready("127.0.0.1", sock.getsockname()[1])
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
