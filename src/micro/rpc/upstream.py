"""Where an edge sends the calls it takes in: the HTTP gateway and the gRPC edge relay
bodies as bytes (a JSON body is never decoded and re-encoded on the way).

Two implementations: the server's :class:`~micro.server.proxy.Forwarder`, in process
(admits the call at its door, picks a node, calls it), and :class:`ProxyUpstream`, which
sends every call to a proxy (an edge running alone, as ``micro service api``).
"""

from __future__ import annotations

from typing import Protocol

from micro.wire import frames
from micro.wire.pool import Pool
from micro.wire.stream import Stream

__all__ = ["ProxyUpstream", "Upstream"]


class Upstream(Protocol):
    """Makes calls whose bodies are already encoded."""

    async def unary(self, header: frames.RequestHeader, body: bytes) -> bytes:
        """The response body; raises the call's error."""
        ...

    async def open_stream(self, header: frames.RequestHeader, first: bytes | None) -> Stream:
        """A streaming call; ``first`` is the request of a server stream, ``None`` when the
        caller sends its messages itself."""
        ...


class ProxyUpstream:
    """Every call through one proxy, which admits and routes it."""

    def __init__(self, proxy: str, pool: Pool | None = None) -> None:
        self.proxy = proxy
        self._pool = pool or Pool()

    async def unary(self, header: frames.RequestHeader, body: bytes) -> bytes:
        conn = await self._pool.get(self.proxy)
        timeout = header.timeout / 1000 if header.timeout > 0 else None
        return await conn.unary(header, body, timeout)

    async def open_stream(self, header: frames.RequestHeader, first: bytes | None) -> Stream:
        conn = await self._pool.get(self.proxy)
        return conn.open_stream(header, first)

    async def close(self) -> None:
        """Close the connection to the proxy."""
        await self._pool.close()
