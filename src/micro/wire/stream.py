"""One stream of a multiplexed connection: bounded inbound queue, credit-based outbound flow.

Both ends of a streaming call hold a :class:`Stream`. Each side may have at most
``window`` unread messages queued at its peer: a sender spends one credit per MESSAGE and
waits when it has none; a reader returns credit in WINDOW frames once it has consumed
half a window. So a slow reader stops a fast writer instead of growing memory without
bound, and a peer that sends beyond its credit is cut off with an error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NoReturn

from micro import errors
from micro.wire import frames

if TYPE_CHECKING:
    from micro.wire.connection import Connection

__all__ = ["DEFAULT_WINDOW", "Stream"]

DEFAULT_WINDOW: Final = 128
"""Messages a stream may have in flight unread; both ends assume the same initial value."""

_END: Final = object()


class Stream:
    """Send and receive messages of one call; used by the caller and the handler alike."""

    __slots__ = (
        "_consumed",
        "_credit",
        "_credit_waiter",
        "_error",
        "_peer_done",
        "_queue",
        "_recv_done",
        "_send_done",
        "_waiter",
        "caller",
        "conn",
        "id",
        "on_cancel",
        "window",
    )

    def __init__(
        self,
        conn: Connection,
        stream_id: int,
        *,
        window: int = DEFAULT_WINDOW,
        caller: bool = False,
    ) -> None:
        self.conn = conn
        self.id = stream_id
        self.window = window
        self.caller = caller
        """True on the calling side (the end that sent the REQUEST)."""
        self.on_cancel: Callable[[], object] | None = None
        self._queue: deque[object] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._credit = window
        self._credit_waiter: asyncio.Future[None] | None = None
        self._consumed = 0
        self._error: errors.MicroError | None = None
        self._recv_done = False
        self._send_done = False
        self._peer_done = False

    # -- frames from the peer -------------------------------------------------------------

    def frame_received(self, kind: int, flags: int, payload: bytes) -> None:
        """Route one frame of this stream (called by the connection)."""
        if kind == frames.MESSAGE:
            if self._recv_done:
                return
            if len(self._queue) >= self.window:
                self._fail_local(
                    errors.BadRequest("micro.wire", "peer sent past its flow-control window")
                )
                self.conn.send(frames.encode_frame(self.id, frames.ERROR, 0, self._error_json()))
                return
            self._queue.append(payload)
            self._wake()
        elif kind == frames.END or kind == frames.RESPONSE:
            if kind == frames.RESPONSE:
                self._queue.append(payload)
            self._queue.append(_END)
            self._recv_done = True
            self._wake()
            if self.caller:
                # The handler has answered and reads no more (it may answer before the caller
                # has sent everything, as in an HTTP/2 early response): what the caller still
                # sends is moot, and a sender parked on credit must not wait forever.
                self._peer_done = True
                self._wake_sender()
            self._maybe_release()
        elif kind == frames.ERROR:
            self._fail_local(errors.from_json(payload))
            self._send_done = True
            self._maybe_release()
        elif kind == frames.WINDOW:
            try:
                self._credit += frames.decode_window(payload)
            except frames.ProtocolError:
                return
            self._wake_sender()
        elif kind == frames.CANCEL:
            self._fail_local(errors.new("micro.wire", "call cancelled by the caller", 499))
            self._send_done = True
            self._maybe_release()
            if self.on_cancel is not None:
                self.on_cancel()

    def connection_lost(self, exc: errors.MicroError) -> None:
        """Fail every waiter: the connection under this stream is gone."""
        self._fail_local(exc)
        if self.on_cancel is not None:
            self.on_cancel()

    # -- reading --------------------------------------------------------------------------

    async def recv(self) -> bytes:
        """The next message; raises ``StopAsyncIteration`` at the end, or the call's error."""
        while not self._queue:
            if self._error is not None:
                raise self._error
            self._waiter = self.conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._queue.popleft()
        if item is _END:
            self._queue.appendleft(_END)
            raise StopAsyncIteration
        self._consumed += 1
        if self._consumed * 2 >= self.window and not self._recv_done:
            self.conn.send(frames.encode_window(self.id, self._consumed))
            self._consumed = 0
        assert isinstance(item, bytes)
        return item

    # -- writing --------------------------------------------------------------------------

    async def send(self, body: bytes) -> None:
        """Send one message, waiting for credit and for the socket to accept more."""
        while self._credit <= 0 and not self._peer_done:
            if self._error is not None:
                raise self._error
            self._credit_waiter = self.conn.loop.create_future()
            try:
                await self._credit_waiter
            finally:
                self._credit_waiter = None
        if self._error is not None:
            raise self._error
        if self._peer_done:
            return
        if self._send_done:
            raise errors.BadRequest("micro.wire", "stream is closed for sending")
        if len(body) > self.conn.max_frame:
            self._too_large(len(body))
        self._credit -= 1
        self.conn.send(frames.encode_frame(self.id, frames.MESSAGE, 0, body))
        if self.conn.paused:
            await self.conn.drain()

    def _too_large(self, size: int) -> NoReturn:
        """A message over the frame limit ends this call (both ways) with 413, and only it."""
        error = frames.too_large("a stream message", size, self.conn.max_frame)
        self.fail(error)
        self._fail_local(error)
        raise error

    def end(self) -> None:
        """Close the sending side: the peer's reader sees the end after the messages sent."""
        if self._send_done or self.conn.closed:
            self._send_done = True
            return
        self._send_done = True
        self.conn.send(frames.encode_frame(self.id, frames.END))
        self._maybe_release()

    def fail(self, error: errors.MicroError) -> None:
        """End the call with an error, both ways (used by handlers)."""
        if not self._send_done and not self.conn.closed:
            self.conn.send(frames.encode_frame(self.id, frames.ERROR, 0, error.to_json()))
        self._send_done = True
        self._recv_done = True
        self._release()

    def cancel(self) -> None:
        """Abort the call from the caller's side; the handler's task is cancelled."""
        if not (self._send_done and self._recv_done) and not self.conn.closed:
            self.conn.send(frames.encode_frame(self.id, frames.CANCEL))
        self._send_done = self._recv_done = True
        self._fail_local(errors.new("micro.wire", "call cancelled", 499))
        self._release()

    def recv_ended(self) -> None:
        """Record that the peer will send no messages (its REQUEST carried END_STREAM)."""
        self._queue.append(_END)
        self._recv_done = True

    def end_sent(self) -> None:
        """Record that the REQUEST frame itself closed the sending side (END_STREAM)."""
        self._send_done = True

    @property
    def finished(self) -> bool:
        """True once both directions are closed."""
        return self._send_done and self._recv_done

    # -- internals ------------------------------------------------------------------------

    def _error_json(self) -> bytes:
        assert self._error is not None
        return self._error.to_json()

    def _fail_local(self, error: errors.MicroError) -> None:
        if self._error is None:
            self._error = error
        self._recv_done = True
        self._wake()
        # A sender parked on credit must see the error too: no credit follows a failure.
        self._wake_sender()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_sender(self) -> None:
        waiter = self._credit_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _maybe_release(self) -> None:
        if self._send_done and self._recv_done:
            self._release()

    def _release(self) -> None:
        self.conn.forget(self.id, self)
