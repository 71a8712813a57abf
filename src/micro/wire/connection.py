"""A multiplexed connection of the native wire, on an ``asyncio.Protocol``.

One connection carries any number of concurrent calls, each a stream id. The caller
side opens streams (odd ids, counting up); the serving side hands every REQUEST frame to
its :class:`Dispatcher`. Writes are gathered and flushed once per event-loop turn, so
64 answers ready in one turn cost one system call, not 64.

When the connection dies every call on it fails at once with :class:`errors.ConnectionError`,
and nothing else is touched: the other connections of a pool or server go on. So no call
kills it by its size: a frame over the peer's limit (which drops the connection) is never
written. A request or stream message that big fails its own call with 413; an answer that
big (a handler's response, an error) goes out as that call's 413 instead.

A connection a listener accepted answers to its :class:`~micro.wire.guard.Guard`: frames
begun hold part of a budget, and it is closed when late, or when idle (by a GOAWAY frame
first, so no call is lost: told GOAWAY, a dialled connection leaves its pool at once and
closes when its calls in flight are done).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from micro import errors
from micro.wire import frames
from micro.wire.ends import Dispatcher, StreamEnd, TaskEnd, UnaryCall
from micro.wire.stream import Stream

if TYPE_CHECKING:
    from micro.wire.guard import Guard

__all__ = ["Connection", "Dispatcher", "StreamEnd", "TaskEnd"]

log = logging.getLogger("micro.wire")


class Connection(asyncio.Protocol):
    """Either end of one multiplexed connection."""

    def __init__(
        self,
        *,
        dispatcher: Dispatcher | None = None,
        max_frame: int = frames.DEFAULT_MAX_FRAME,
        peer: str = "",
        on_lost: Callable[[Connection], None] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False
        self.streams: dict[int, StreamEnd] = {}
        self._dispatcher = dispatcher
        self.max_frame = max_frame
        """The largest payload either end takes (both ends use the same limit)."""
        self._max_write = max_frame + frames.HEADER_SIZE
        self._decoder = frames.FrameDecoder(max_frame)
        self._on_lost = on_lost
        self._next_id = 1
        self._wbuf: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed_future: asyncio.Future[None] = self.loop.create_future()
        self.close_reason: errors.MicroError | None = None
        self.guard: Guard | None = None
        """The listener's guard of an accepted connection (``None`` for a dialled one)."""
        # What the guard keeps of this connection (see micro.wire.guard):
        self.since = self.seen = 0.0
        self.active = self.greeted = self.waiting = False
        self.draining = False
        """GOAWAY was sent (listening side) or received (dialling side)."""
        self.reserved = self.wanted = 0

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = transport  # type: ignore[assignment]
        if not self.peer:
            peer = transport.get_extra_info("peername")
            self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "unix")
        if self._dispatcher is not None:
            self._dispatcher.connection_made(self)
        if self.guard is not None:
            self.guard.opened(self)

    def data_received(self, data: bytes) -> None:
        try:
            received = self._decoder.feed(data)
        except frames.ProtocolError as exc:
            log.warning("closing connection to %s: %s", self.peer, exc)
            if self._dispatcher is None:
                # We dialled it: whatever answers is not a micro server (or is a broken one).
                reason: errors.MicroError = errors.ConnectionError(
                    "micro.wire", f"{self.peer} does not speak the micro protocol ({exc})"
                )
            else:
                reason = errors.BadRequest("micro.wire", f"protocol error: {exc}")
            self.abort(reason)
            return
        guard = self.guard
        if guard is not None:
            self.active = True
            if received:
                self.greeted = True
            needed = self._decoder.needed
            if needed != self.reserved:
                guard.partial(self, needed)
        streams = self.streams
        for stream_id, kind, flags, payload in received:
            if kind == frames.REQUEST:
                if self._dispatcher is None or stream_id in streams:
                    self.abort(
                        errors.BadRequest("micro.wire", "protocol error: unexpected request")
                    )
                    return
                self._dispatcher.request_received(self, stream_id, flags, payload)
            else:
                end = streams.get(stream_id)
                if end is not None:
                    end.frame_received(kind, flags, payload)
                elif kind == frames.GOAWAY and self._dispatcher is None:
                    self._told_to_go()

    def eof_received(self) -> bool | None:
        if self._decoder.pending:
            log.warning("connection to %s ended inside a frame", self.peer)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.close_reason is None:
            detail = f"connection to {self.peer} lost" + (f": {exc}" if exc else "")
            self.close_reason = errors.ConnectionError("micro.wire", detail)
        reason = self.close_reason
        streams, self.streams = self.streams, {}
        for end in streams.values():
            end.connection_lost(reason)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        if not self._closed_future.done():
            self._closed_future.set_result(None)
        if self._dispatcher is not None:
            self._dispatcher.connection_lost(self)
        if self.guard is not None:
            self.guard.closed(self)
        if self._on_lost is not None:
            self._on_lost(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def _told_to_go(self) -> None:
        self.draining = True
        if self._on_lost is not None:
            self._on_lost(self)  # out of the pool: the next call dials again
        self._close_if_drained()

    def _close_if_drained(self) -> None:
        if self.draining and not self.streams and self._dispatcher is None:
            self.close()

    # -- writing --------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue one frame; frames go out together at the end of this loop turn."""
        if self.closed:
            return
        if len(data) > self._max_write:  # an answer too big: see the module docstring
            log.warning("refused to send %d bytes to %s in one frame", len(data), self.peer)
            data = frames.refused(data, self.max_frame)
        self._wbuf.append(data)
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        buf = self._wbuf
        if not buf or self.transport is None or self.closed:
            buf.clear()
            return
        data = buf[0] if len(buf) == 1 else b"".join(buf)
        buf.clear()
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the socket's write buffer is over its high-water mark."""
        if self.paused and not self.closed:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
        if self.closed:
            raise self.close_reason or errors.ConnectionError("micro.wire", "connection closed")

    # -- calling --------------------------------------------------------------------------

    def _new_id(self) -> int:
        stream_id = self._next_id
        self._next_id = stream_id + 2 if stream_id < 0xFFFFFFF0 else 1
        return stream_id

    async def unary(
        self, header: frames.RequestHeader, body: bytes, timeout: float | None
    ) -> bytes:
        """Make one unary call; returns the response body or raises the call's error."""
        if self.closed:
            raise self.close_reason or errors.ConnectionError("micro.wire", "connection closed")
        stream_id = self._new_id()
        frame = frames.encode_request(stream_id, header, body, frames.END_STREAM)
        if len(frame) > self._max_write:
            raise _too_large(frame, header, self.max_frame)
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self.streams[stream_id] = UnaryCall(fut)
        self.send(frame)
        timer = None
        if timeout is not None:
            timer = self.loop.call_later(timeout, _expire, fut, header)
        try:
            return await fut
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError | errors.Timeout) and not self.closed:
                self.send(frames.encode_frame(stream_id, frames.CANCEL))
            raise
        finally:
            self.streams.pop(stream_id, None)
            if timer is not None:
                timer.cancel()
            if self.draining:
                self._close_if_drained()

    def start_unary(self, header: frames.RequestHeader, body: bytes, end: StreamEnd) -> int:
        """Send a unary call whose answer frames go to ``end`` (what a relay does instead of
        awaiting :meth:`unary`); its stream id, for a CANCEL and :meth:`forget`."""
        if self.closed:
            raise self.close_reason or errors.ConnectionError("micro.wire", "connection closed")
        stream_id = self._new_id()
        frame = frames.encode_request(stream_id, header, body, frames.END_STREAM)
        if len(frame) > self._max_write:
            raise _too_large(frame, header, self.max_frame)
        self.streams[stream_id] = end
        self.send(frame)
        return stream_id

    def open_stream(self, header: frames.RequestHeader, body: bytes | None) -> Stream:
        """Open a streaming call; ``body`` is the one request of a server-streaming call."""
        if self.closed:
            raise self.close_reason or errors.ConnectionError("micro.wire", "connection closed")
        stream_id = self._new_id()
        flags = frames.STREAMING | (frames.END_STREAM if body is not None else 0)
        frame = frames.encode_request(stream_id, header, body, flags)
        if len(frame) > self._max_write:
            raise _too_large(frame, header, self.max_frame)
        stream = Stream(self, stream_id, caller=True)
        self.streams[stream_id] = stream
        self.send(frame)
        if body is not None:
            stream.end_sent()
        return stream

    def forget(self, stream_id: int, end: Any) -> None:
        """Drop a finished stream (only if it is still the one registered under that id)."""
        if self.streams.get(stream_id) is end:
            del self.streams[stream_id]
            if self.draining:
                self._close_if_drained()

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Flush what is queued and close."""
        if self.transport is not None and not self.closed:
            self._flush()
            self.transport.close()

    def abort(self, reason: errors.MicroError) -> None:
        """Close at once, failing every call on this connection with ``reason``."""
        self.close_reason = reason
        if self.transport is not None and not self.closed:
            self._wbuf.clear()
            self.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is fully closed."""
        await asyncio.shield(self._closed_future)


def _too_large(frame: bytes, header: frames.RequestHeader, limit: int) -> errors.MicroError:
    what = f"the request to {header.service} {header.endpoint}"
    return frames.too_large(what, len(frame) - frames.HEADER_SIZE, limit)


def _expire(fut: asyncio.Future[bytes], header: frames.RequestHeader) -> None:
    if not fut.done():
        fut.set_exception(
            errors.Timeout(
                header.service,
                f"call to {header.service} {header.endpoint} timed out",
            )
        )
