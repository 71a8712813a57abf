"""A pool of connections: exactly one multiplexed connection per peer address.

Concurrent callers asking for the same peer share one connect attempt; a connection that
dies leaves the pool at once, so the next call dials again (and fails fast if the peer
is gone, which is what lets the client eject a dead node and retry elsewhere).
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module

from micro.wire.connection import Connection
from micro.wire.transport import Address, connect, parse_address

__all__ = ["Pool"]


class Pool:
    """Connections to peers, keyed by address text."""

    def __init__(
        self, *, ssl: ssl_module.SSLContext | None = None, connect_timeout: float = 5.0
    ) -> None:
        self._conns: dict[str, Connection] = {}
        self._connecting: dict[str, asyncio.Future[Connection]] = {}
        self._ssl = ssl
        self._connect_timeout = connect_timeout

    def get_nowait(self, address: str) -> Connection | None:
        """The open connection to ``address``, if there is one."""
        conn = self._conns.get(address)
        if conn is not None and not conn.closed:
            return conn
        return None

    async def get(self, address: str) -> Connection:
        """The connection to ``address``, dialling it if needed."""
        conn = self._conns.get(address)
        if conn is not None and not conn.closed:
            return conn
        pending = self._connecting.get(address)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._connecting[address] = fut
        try:
            conn = await self._dial(address)
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: waiters may be none
            raise
        finally:
            self._connecting.pop(address, None)
        self._conns[address] = conn
        fut.set_result(conn)
        return conn

    async def _dial(self, address: str) -> Connection:
        parsed: Address = parse_address(address)
        ssl = self._ssl if parsed.tls else None

        def factory() -> Connection:
            return Connection(peer=address, on_lost=self._lost)

        conn = await connect(parsed, factory, ssl=ssl, timeout=self._connect_timeout)
        assert isinstance(conn, Connection)
        return conn

    def _lost(self, conn: Connection) -> None:
        if self._conns.get(conn.peer) is conn:
            del self._conns[conn.peer]

    async def close(self) -> None:
        """Close every connection."""
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()
