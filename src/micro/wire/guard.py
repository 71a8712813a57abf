"""What the connections of one native listener may hold, and for how long.

A frame is read whole before anything acts on it, so a peer that starts frames and never
finishes them (100 connections, each 16 MiB announced and one byte short) would make the
server hold all of it; a peer that connects and says nothing, or stops mid-frame, would
hold its connection forever. The :class:`Guard` of each listener
(:func:`micro.wire.transport.listen` gives every connection it accepts to one) bounds both:

- **Read budget.** A frame that has begun to arrive reserves its announced size from the
  listener's ``read_budget``. A frame that does not fit waits, its connection paused (the
  kernel's buffers and then TCP hold the rest on the sender's side), and takes room as
  soon as room is freed, waiting frames first, in turn; a frame that fits never waits
  behind a bigger one. So the frames in progress on all connections hold at most the
  budget, plus one socket read per paused connection. (A paused connection reads nothing,
  not even its peer's leaving: one that left is found out at its deadline.)
- **Frame deadline.** A frame must arrive whole within ``frame_timeout`` of getting its
  room (or of its waiting for room); a connection must send its first whole frame within
  ``frame_timeout`` of connecting. Else the connection is aborted.
- **Idle limit.** A connection with no call in flight that receives nothing for
  ``idle_timeout`` is told GOAWAY: its client's pool drops it (the next call dials again)
  and closes it once its calls are done, which ends it here; a client that does not is
  closed ``frame_timeout`` later. Calls sent meanwhile are served as usual, so a pool never
  loses one to the close.

Deadlines are checked by one sweep per listener, ticking while it has connections, so a
connection costs no timer of its own and the hot path a few attribute writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from micro import errors
from micro.wire import frames

if TYPE_CHECKING:
    from micro.settings import Settings
    from micro.wire.connection import Connection

__all__ = ["Guard", "Limits"]

log = logging.getLogger("micro.wire")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one native listener allows its connections (the ``MICRO_WIRE_*`` settings)."""

    frame_timeout: float = 30.0
    idle_timeout: float = 300.0
    read_budget: int = 64 * 1024 * 1024

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits the settings ask for."""
        return cls(
            settings.wire_frame_timeout, settings.wire_idle_timeout, settings.wire_read_budget
        )


class Guard:
    """The read budget and deadlines of one listener's connections."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.held = 0
        """Bytes reserved by the frames arriving now."""
        self._conns: set[Connection] = set()
        self._waiting: deque[Connection] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._tick = max(0.05, min(1.0, limits.frame_timeout / 4, limits.idle_timeout / 4))

    # -- from the connections -------------------------------------------------------------

    def opened(self, conn: Connection) -> None:
        """A connection was accepted."""
        conn.since = conn.seen = conn.loop.time()
        self._conns.add(conn)
        if self._sweep is None:
            self._sweep = conn.loop.call_later(self._tick, self._check, conn.loop)

    def closed(self, conn: Connection) -> None:
        """A connection is gone: what it held is free, and its turn is given up."""
        self._conns.discard(conn)
        if conn.waiting:
            conn.waiting = False
            self._waiting.remove(conn)
        self._release(conn)
        self._grant()

    def partial(self, conn: Connection, size: int) -> None:
        """``conn`` holds part of a frame of ``size`` bytes (``0``: no partial frame)."""
        if size == conn.reserved or conn.waiting:
            return
        self._release(conn)
        if size and not self._reserve(conn, size):
            conn.waiting = True
            conn.wanted = size
            conn.since = conn.loop.time()
            self._waiting.append(conn)
            _pause(conn, True)

    # -- internals ------------------------------------------------------------------------

    def _reserve(self, conn: Connection, size: int) -> bool:
        if self.held + size > self.limits.read_budget:
            return False
        self.held += size
        conn.reserved = size
        conn.since = conn.loop.time()
        return True

    def _release(self, conn: Connection) -> None:
        if conn.reserved:
            self.held -= conn.reserved
            conn.reserved = 0
            self._grant()

    def _grant(self) -> None:
        """Give room to the waiting frames that fit, in turn."""
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, deque()
        for conn in waiting:
            if self._reserve(conn, conn.wanted):
                conn.waiting = False
                _pause(conn, False)
            else:
                self._waiting.append(conn)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """The sweep: abort what is late, close what idles."""
        self._sweep = None
        now = loop.time()
        limits = self.limits
        for conn in list(self._conns):
            if conn.active:
                conn.active = False
                conn.seen = now
            late = (conn.reserved or conn.waiting or not conn.greeted) and (
                now - conn.since > limits.frame_timeout
            )
            if late:
                what = "its first frame" if not conn.greeted else "a frame"
                conn.abort(
                    errors.Timeout(
                        "micro.wire", f"{what} took over {limits.frame_timeout}s to arrive"
                    )
                )
            elif conn.streams or conn.reserved:
                conn.seen = now
            elif conn.draining:
                if now - conn.seen > limits.frame_timeout:
                    conn.close()  # told to go, and did not
            elif now - conn.seen > limits.idle_timeout:
                log.debug("idle connection from %s: going away", conn.peer)
                conn.draining = True
                conn.send(frames.encode_frame(0, frames.GOAWAY))
                conn.seen = now
        if self._conns:
            self._sweep = loop.call_later(self._tick, self._check, loop)


def _pause(conn: Connection, pause: bool) -> None:
    """Stop (or start again) reading from ``conn``'s socket."""
    transport = conn.transport
    if transport is not None and not conn.closed:
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()
