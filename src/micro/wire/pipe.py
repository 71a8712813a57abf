"""An in-process connection: the native wire between two parts of one process, no socket.

The server's edges (the gateway, the gRPC edge, the dashboard) call the core services the
server hosts through one of these: the calls pass the same door and handlers as calls
from outside, yet cannot be confused with them, since no socket can produce a connection
whose peer is :data:`IN_PROCESS`. That is what lets the server trust what an edge says
about its client (its address), and only an edge.

Each side's writes (already gathered once per loop turn by the connection) are handed to
the other side on the next turn, in order; closing either side ends both.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from micro.wire.connection import Connection, Dispatcher

__all__ = ["IN_PROCESS", "pipe"]

IN_PROCESS: Final = "in-process"
"""The peer of both ends of a pipe (a socket's peer is ``host:port`` or ``unix``)."""


class _End(asyncio.Transport):
    """One end of the pipe, as the connection on that side sees its transport."""

    def __init__(self, here: Connection) -> None:
        super().__init__()
        self._here = here
        self._there: _End | None = None
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        there = self._there
        if self._closing or there is None or there._closing:
            return
        self._here.loop.call_soon(there._here.data_received, bytes(data))

    def close(self) -> None:
        self._shut()

    def abort(self) -> None:
        self._shut()

    def _shut(self) -> None:
        for end in (self, self._there):
            if end is not None and not end._closing:
                end._closing = True
                end._here.loop.call_soon(end._here.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def pipe(dispatcher: Dispatcher) -> Connection:
    """A connection to ``dispatcher`` (a server) within this process: the caller's end."""
    caller = Connection(peer=IN_PROCESS)
    served = Connection(dispatcher=dispatcher, peer=IN_PROCESS)
    caller_end, served_end = _End(caller), _End(served)
    caller_end._there, served_end._there = served_end, caller_end
    caller.connection_made(caller_end)
    served.connection_made(served_end)
    return caller
