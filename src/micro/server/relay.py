"""The proxy's fast path for unary calls: relay frames between two connections with no
task, no future and no coroutine per call.

A forwarded unary call is, on the proxy, one REQUEST frame in and one answer frame out.
When everything the call needs is already known without awaiting (the door's cached
decision, the caller's verified token, the route, a pooled connection to the node), the
request is written to the node at once and the node's answer frame is written back to
the caller when it arrives, by two small stream ends that know each other:

- :class:`Upward` is the end on the node's connection: the answer (RESPONSE or ERROR) goes
  back as is (an error's JSON is never re-encoded), the breakers hear the outcome, and a
  lost node connection fails the call with that error;
- :class:`Downward` is the end on the caller's connection: its CANCEL, or its connection
  going, cancels the call on the node.

Only calls that would not be retried once sent take this path (endpoints not marked
idempotent): whatever happens to them after sending is reported, never replayed, exactly
as on the slow path. Everything else (a cache miss, an idempotent endpoint, streams, the
edges' calls) goes the slow path, :meth:`~micro.server.proxy.Forwarder.unary`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from micro import errors
from micro.wire import frames

if TYPE_CHECKING:
    from micro.routing.policy import Policy
    from micro.routing.router import Router
    from micro.trace.span import Span
    from micro.wire.connection import Connection

__all__ = ["Downward", "Upward"]


class Upward:
    """The relayed call's end on the node's connection."""

    __slots__ = (
        "address",
        "down",
        "down_end",
        "down_id",
        "key",
        "policy",
        "router",
        "span",
        "up",
        "up_id",
    )

    def __init__(
        self,
        router: Router,
        key: tuple[str, str],
        address: str,
        policy: Policy,
        down: Connection,
        down_id: int,
    ) -> None:
        self.router = router
        self.key = key
        self.address = address
        self.policy = policy
        self.down = down
        self.down_id = down_id
        self.up: Connection | None = None
        self.up_id = 0
        self.span: Span | None = None
        """The proxy's span of the call (tracing), ended with its answer."""
        self.down_end = Downward(self)
        """What the caller's connection routes this call's frames to."""

    def _done(self) -> None:
        up = self.up
        if up is not None:
            up.forget(self.up_id, self)
        self.down.forget(self.down_id, self.down_end)

    def frame_received(self, kind: int, flags: int, payload: bytes) -> None:
        span = self.span
        if kind == frames.RESPONSE:
            self.down.send(frames.encode_frame(self.down_id, frames.RESPONSE, 0, payload))
            self.router.succeeded(self.key, self.address)
            if span is not None:
                span.end()
        elif kind == frames.ERROR:
            self.down.send(frames.encode_frame(self.down_id, frames.ERROR, 0, payload))
            error = errors.from_json(payload)
            self.router.failed(self.key, self.address, error, self.policy, sent=True)
            if span is not None:
                span.fail(error)
        elif kind == frames.MESSAGE or kind == frames.END:
            wrong = errors.BadRequest("micro.wire", "endpoint streams; call it as a stream")
            self.down.send(frames.encode_frame(self.down_id, frames.ERROR, 0, wrong.to_json()))
            if self.up is not None:
                self.up.send(frames.encode_frame(self.up_id, frames.CANCEL))
        else:
            return
        self._done()

    def connection_lost(self, exc: errors.MicroError) -> None:
        self.down.send(frames.encode_frame(self.down_id, frames.ERROR, 0, exc.to_json()))
        self.router.failed(self.key, self.address, exc, self.policy, sent=True)
        if self.span is not None:
            self.span.fail(exc)
        self.down.forget(self.down_id, self.down_end)

    def cancel(self) -> None:
        """The caller cancelled, or went: cancel the call on the node."""
        up = self.up
        if up is not None and not up.closed:
            up.send(frames.encode_frame(self.up_id, frames.CANCEL))
            up.forget(self.up_id, self)


class Downward:
    """The relayed call's end on the caller's connection."""

    __slots__ = ("upward",)

    def __init__(self, upward: Upward) -> None:
        self.upward = upward

    def frame_received(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == frames.CANCEL:
            self.upward.cancel()
            self.upward.down.forget(self.upward.down_id, self)
        # (a REQUEST never comes on a call's id; nothing else is the caller's to send)

    def connection_lost(self, exc: errors.MicroError) -> None:
        self.upward.cancel()
