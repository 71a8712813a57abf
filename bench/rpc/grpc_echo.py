"""grpcio asyncio echo: the usual choice for Python RPC, as a baseline.

Why a generic handler with identity (bytes) serializers: no protoc step and no
protobuf cost, so the comparison is of the RPC machinery (HTTP/2, call
objects, the asyncio bridge), with the same bytes on the wire as the other
targets.  The client uses one channel (one HTTP/2 connection) for all
concurrent calls, which is how grpcio is normally used.

    python bench/rpc/grpc_echo.py serve [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``import bench`` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import grpc  # type: ignore[import-untyped, unused-ignore]
import uvloop

from bench._serve import announce_ready, check_loopback, start_watchdog

SERVICE = "helloworld.Helloworld"
METHOD = "Call"
PATH = f"/{SERVICE}/{METHOD}"
REQUEST = b'{"name":"John"}'
REPLY = b'{"msg":"Hello John"}'


async def _handle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return REPLY


class GrpcEchoClient:
    """One channel; ``call`` is safe to run from many tasks at once."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        # serializer=None means bytes pass through untouched.
        self._method = channel.unary_unary(PATH)

    @classmethod
    async def connect(cls, address: str, timeout: float = 10.0) -> GrpcEchoClient:
        host, _, _port = address.rpartition(":")
        check_loopback(host)
        channel = grpc.aio.insecure_channel(address)
        await asyncio.wait_for(channel.channel_ready(), timeout)
        return cls(channel)

    async def call(self) -> None:
        await self._method(REQUEST)

    async def close(self) -> None:
        await self._channel.close()


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(_handle)}
    )
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{check_loopback(host)}:{port}")
    await server.start()
    announce_ready(host, bound)
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["serve"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    start_watchdog()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
