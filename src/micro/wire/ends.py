"""What a connection routes frames to: the serving side's :class:`Dispatcher` (each REQUEST
frame), and the end of each call in flight (every other frame of its stream): a
:class:`~micro.wire.stream.Stream`, or for unary calls the cheapest ends there are,
:class:`UnaryCall` on the calling side and :class:`TaskEnd` on the serving one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from micro import errors
from micro.wire import frames

if TYPE_CHECKING:
    from micro.wire.connection import Connection

__all__ = ["Dispatcher", "StreamEnd", "TaskEnd", "UnaryCall"]


class StreamEnd(Protocol):
    """What the connection routes a stream's frames to: a :class:`Stream` or a pending unary call."""

    def frame_received(self, kind: int, flags: int, payload: bytes) -> None: ...

    def connection_lost(self, exc: errors.MicroError) -> None: ...


class Dispatcher(Protocol):
    """The serving side: receives each REQUEST frame of a connection."""

    def request_received(
        self, conn: Connection, stream_id: int, flags: int, payload: bytes
    ) -> None:
        """Start serving one call; must not block."""
        ...

    def connection_made(self, conn: Connection) -> None: ...

    def connection_lost(self, conn: Connection) -> None: ...


class UnaryCall:
    """A caller's pending unary call: the cheapest possible stream end."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[bytes]) -> None:
        self.future = future

    def frame_received(self, kind: int, flags: int, payload: bytes) -> None:
        fut = self.future
        if fut.done():
            return
        if kind == frames.RESPONSE:
            fut.set_result(payload)
        elif kind == frames.ERROR:
            fut.set_exception(errors.from_json(payload))
        elif kind == frames.MESSAGE or kind == frames.END:
            fut.set_exception(
                errors.BadRequest("micro.wire", "endpoint streams; call it as a stream")
            )

    def connection_lost(self, exc: errors.MicroError) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class TaskEnd:
    """The serving end of a unary call (served or forwarded): a CANCEL frame or a lost
    connection cancels the task doing the work.

    The work says when it has :attr:`started`; a task cancelled before that never runs
    its body (a CANCEL read together with its REQUEST), so :meth:`never_ran` is told
    instead: where the work cleans up in its own ``finally`` rather than in a done
    callback (which costs a scheduled callback per call), it does the same there."""

    __slots__ = ("expired", "started", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.started = False
        self.expired = False
        """The call's deadline passed (:meth:`expire`): its task's cancel is a timeout."""

    def expire(self) -> None:
        """The call's deadline passed: cancel the work, marked as a timeout."""
        self.expired = True
        self.cancel()

    def cancel(self) -> None:
        """Cancel the work (once it has not started: it never will, see :meth:`never_ran`)."""
        task = self.task
        if task is None:
            return
        task.cancel()
        if not self.started:
            self.task = None
            self.never_ran()

    def never_ran(self) -> None:
        """The task was cancelled before its first step (nothing to do by default)."""

    def frame_received(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == frames.CANCEL:
            self.cancel()

    def connection_lost(self, exc: errors.MicroError) -> None:
        self.cancel()
