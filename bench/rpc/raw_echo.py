"""Raw uvloop echo of length-prefixed frames: the ceiling for any Python RPC.

Why: it is the least work a request/response over TCP can cost in Python
(one ``asyncio.Protocol`` per side, no serialisation, no routing), so it
tells how much of the remaining cost is the framework's.

Wire format, both directions::

    frame = u32 big-endian length of (id + payload) | u32 request id | payload

The client multiplexes any number of in-flight requests over one connection,
matching replies by request id (dict of id -> future).  The server answers
every request with the fixed bytes of ``{"msg":"Hello John"}``.

    python bench/rpc/raw_echo.py serve [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import sys
from pathlib import Path
from typing import cast

if __package__ in (None, ""):  # run as a script: make ``import bench`` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import uvloop

from bench._serve import announce_ready, check_loopback, start_watchdog

REQUEST = b'{"name":"John"}'
REPLY = b'{"msg":"Hello John"}'

_HEAD = struct.Struct(">II")  # length (of id + payload), request id
_LEN = struct.Struct(">I")


def _frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Pop every complete frame off ``buf``; returns (request id, payload)."""
    out: list[tuple[int, bytes]] = []
    pos, end = 0, len(buf)
    while end - pos >= 8:
        length, rid = _HEAD.unpack_from(buf, pos)
        if end - pos - 4 < length:
            break
        out.append((rid, bytes(buf[pos + 8 : pos + 4 + length])))
        pos += 4 + length
    if pos:
        del buf[:pos]
    return out


def _frame(rid: int, payload: bytes) -> bytes:
    return _HEAD.pack(len(payload) + 4, rid) + payload


class _ServerProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports do not subclass asyncio.Transport: cast, not assert.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        frames = _frames(self._buf)
        if frames and self._transport is not None:
            # One write per read batch: replies to pipelined requests coalesce.
            self._transport.write(b"".join(_frame(rid, REPLY) for rid, _ in frames))


class _ClientProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._buf = bytearray()
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        for rid, payload in _frames(self._buf):
            fut = self.pending.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(payload)

    def connection_lost(self, exc: Exception | None) -> None:
        err = exc or ConnectionError("connection closed")
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(err)
        self.pending.clear()
        if not self.lost.done():
            self.lost.set_result(None)


class RawEchoClient:
    """One connection, many in-flight requests."""

    def __init__(self, transport: asyncio.Transport, protocol: _ClientProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._next = 0
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, address: str) -> RawEchoClient:
        host, _, port = address.rpartition(":")
        transport, protocol = await asyncio.get_running_loop().create_connection(
            _ClientProtocol, check_loopback(host), int(port)
        )
        return cls(transport, protocol)

    async def request(self, payload: bytes = REQUEST) -> bytes:
        rid = self._next = (self._next + 1) & 0xFFFFFFFF
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._protocol.pending[rid] = fut
        self._transport.write(_frame(rid, payload))
        return await fut

    async def call(self) -> None:
        """The benchmark call: one request, reply discarded."""
        await self.request(REQUEST)

    async def close(self) -> None:
        self._transport.close()
        await self._protocol.lost


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        _ServerProtocol, check_loopback(host), port, backlog=1024
    )
    bound = server.sockets[0].getsockname()
    announce_ready(bound[0], bound[1])
    async with server:
        await server.serve_forever()


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
