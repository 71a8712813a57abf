"""The proxy: forwards calls for services the server does not host to one of their nodes.

It reads only the request header (service, namespace) and relays bodies as bytes, so a
JSON body from the CLI reaches the service untouched. Unary calls are relayed as one
request and one response; streams are pumped both ways with flow control on each leg.
Which node a call goes to, and whether it is tried again, is the server's
:class:`~micro.routing.Router`'s business (round robin, breakers, the ``resilience``
policies), on the routes the server's one registry watch keeps fresh.

What a forwarded call carries is the door's business, not the caller's:

- **The platform's own services** (:data:`~micro.rpc.client.CORE_SERVICES`) are always the
  server's: a call to one from an edge (the gateway, the gRPC edge, the dashboard) goes to
  the server's own handlers over an in-process pipe, whatever its namespace, and such a
  name is never looked up in a registry a tenant can write to.
- **No credential reaches a service.** Once the door admitted a call, the caller's token
  is replaced by one bound to the service called (:mod:`micro.auth.bound`), which no other
  door takes; the service's own door tells it who the caller is.
- **No loops.** Each forward counts a hop (``micro-hops``); past :data:`MAX_HOPS` the call
  is refused with 508, and a node registered at the proxy's own address is never called.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final, TypeVar

import msgspec

from micro import errors
from micro.auth.door import Door
from micro.routing import CORE_SERVICES, Router
from micro.server.relay import Upward
from micro.trace.edges import forward_failed, forward_span
from micro.trace.span import Span
from micro.wire import frames
from micro.wire.connection import Connection, TaskEnd
from micro.wire.pipe import pipe
from micro.wire.stream import Stream
from micro.wire.transport import parse_address

if TYPE_CHECKING:
    from micro.auth.bound import BoundTokens
    from micro.rpc.server import Server

__all__ = ["MAX_HOPS", "Forwarder"]

log = logging.getLogger("micro.proxy")

MAX_HOPS: Final = 8
"""How many proxies one call may pass through: more means it goes round in a loop."""

_LOOP_DETECTED: Final = 508
_SELF_HOSTS: Final = frozenset({"", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"})


class Forwarder:
    """The server's fallback for calls to services it does not host, and the upstream its
    edges hand every call to. ``router`` is the server's (its table shared with the
    edges); ``local`` is the server whose services the edges reach in process; ``bound``
    mints the tokens forwarded calls carry."""

    def __init__(
        self,
        router: Router,
        *,
        door: Door | None = None,
        bound: BoundTokens | None = None,
        local: Server | None = None,
    ) -> None:
        self.router = router
        self._door = door
        self._bound = bound
        self._local = local
        self._pipe: Connection | None = None
        self._self_ports: set[int] = set()
        self._self_addresses: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, *, listening: str = "") -> None:
        """Forward from now on; ``listening`` is the proxy's own address, never forwarded to."""
        if listening:
            where = parse_address(listening)
            if where.is_unix:
                self._self_addresses.add(str(where))
            else:
                self._self_ports.add(where.port)
                self._self_addresses.add(where.host)
        self.router.set_self(self._is_self)
        self.router.table.start()

    def _is_self(self, address: str) -> bool:
        """Whether ``address`` is this proxy's listener (calling it would loop)."""
        try:
            where = parse_address(address)
        except ValueError:
            return False
        if where.is_unix:
            return str(where) in self._self_addresses
        hosts = _SELF_HOSTS | self._self_addresses
        return where.port in self._self_ports and where.host in hosts

    async def stop(self) -> None:
        """Stop forwarding and close connections to nodes."""
        for task in list(self._tasks):
            task.cancel()
        if self._pipe is not None:
            self._pipe.close()
        await self.router.close()

    # -- forwarding -----------------------------------------------------------------------

    def __call__(
        self,
        conn: Connection,
        stream_id: int,
        flags: int,
        header: frames.RequestHeader,
        body: bytes,
    ) -> None:
        first: str | None = ""
        if not flags & frames.STREAMING:
            first = self._relay(conn, stream_id, header, body)
            if first is None:
                return
        loop = conn.loop
        if flags & frames.STREAMING:
            down = Stream(conn, stream_id)
            conn.streams[stream_id] = down
            if flags & frames.END_STREAM:
                down.recv_ended()
            task = loop.create_task(self._forward_stream(down, header, body, flags))
            down.on_cancel = task.cancel
        else:
            pending = TaskEnd()
            conn.streams[stream_id] = pending
            task = pending.task = loop.create_task(
                self._forward_unary(conn, stream_id, pending, header, body, first or "")
            )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _relay(
        self, conn: Connection, stream_id: int, header: frames.RequestHeader, body: bytes
    ) -> str | None:
        """Relay a unary call when all it needs is known without awaiting (see
        :mod:`micro.server.relay`): None. Otherwise the call is left to the slow path,
        untouched, with the node picked for it if one was (``""`` if not)."""
        service, endpoint, metadata = header.service, header.endpoint, header.metadata
        door = self._door
        if service in CORE_SERVICES or _hops(metadata) + 1 >= MAX_HOPS:
            return ""
        try:
            account = door.admit_cached(metadata, service, endpoint) if door is not None else None
        except errors.MicroError:
            return ""  # refused: the slow path says so
        if account is False:
            return ""
        credential = metadata.get("authorization", "")
        verified = None
        if account is not None and self._bound is not None and door is not None:
            verified = door.verified_cached(credential)
            if verified is None:
                return ""
        namespace = metadata.get("micro-namespace") or "micro"
        router = self.router
        plan = router.plan(service, namespace, endpoint)
        if plan is None or plan.idempotent:
            return ""
        policy, key = plan.policy, plan.key
        try:
            address = router.pick(plan.route, key, policy)
        except errors.MicroError:
            return ""
        up = router.pool.get_nowait(address)
        if up is None:
            return address  # the slow path dials it: the next call here finds it connected
        # Committed: nothing below awaits, and nothing checked above can change meanwhile.
        metadata["micro-hops"] = str(_hops(metadata) + 1)
        if door is not None:
            metadata.pop("authorization", None)
            if verified is not None and self._bound is not None:
                token = self._bound.token(credential, verified, namespace, service)
                metadata["authorization"] = f"Bearer {token}"
        asked = header.timeout / 1000 if header.timeout > 0 else None
        left = policy.deadline(asked)
        if left != asked and left is not None:
            header = msgspec.structs.replace(header, timeout=left * 1000)
        plan.budget.deposit()
        relay = Upward(router, key, address, policy, conn, stream_id)
        relay.span = forward_span(header)  # (sent on in the header's metadata)
        conn.streams[stream_id] = relay.down_end
        try:
            relay.up_id = up.start_unary(header, body, relay)
        except errors.MicroError as exc:
            conn.forget(stream_id, relay.down_end)
            conn.send(frames.encode_frame(stream_id, frames.ERROR, 0, exc.to_json()))
            return None
        relay.up = up
        return None

    def _local_pipe(self, header: frames.RequestHeader) -> Connection | None:
        """The in-process pipe to the server's own handlers (which admit the call
        themselves) when they serve the call's service."""
        local = self._local
        if local is None or not local.hosts(header.service):
            return None
        if self._pipe is None or self._pipe.closed:
            self._pipe = pipe(local)
        return self._pipe

    async def _admit(self, header: frames.RequestHeader) -> str:
        """Admit a call to a node of a user service, with the caller's token replaced by
        one bound to the service; the call's namespace."""
        if header.service in CORE_SERVICES:
            raise errors.NotFound("micro.proxy", f"service {header.service} not found")
        metadata = header.metadata
        hops = _hops(metadata)
        if hops >= MAX_HOPS:
            raise errors.new(
                "micro.proxy",
                f"call to {header.service} passed {hops} proxies: it is going round in a loop",
                _LOOP_DETECTED,
            )
        metadata["micro-hops"] = str(hops + 1)
        door = self._door
        if door is not None:
            # The cached answers need no coroutine; only a miss awaits.
            account = door.admit_cached(metadata, header.service, header.endpoint)
            if account is False:
                account = await door.admit(metadata, header.service, header.endpoint)
            credential = metadata.pop("authorization", "")
            if account is not None and self._bound is not None:
                verified = door.verified_cached(credential) or await door.verified(credential)
                namespace = metadata.get("micro-namespace") or "micro"
                token = self._bound.token(credential, verified, namespace, header.service)
                metadata["authorization"] = f"Bearer {token}"
        return metadata.get("micro-namespace") or "micro"

    # -- the Upstream interface (what the gateway and the gRPC edge call) ------------------

    async def unary(self, header: frames.RequestHeader, body: bytes, *, first: str = "") -> bytes:
        """Admit the call, then make it on a node of its service (``first``, when the relay
        picked one it had no connection to yet); the response body."""
        local = self._local_pipe(header)
        if local is not None:
            timeout = header.timeout / 1000 if header.timeout > 0 else None
            return await local.unary(header, body, timeout)
        namespace = await self._admit(header)
        return await self.router.unary(header, body, namespace=namespace, first=first)

    async def open_stream(self, header: frames.RequestHeader, first: bytes | None) -> Stream:
        """Admit the call, then open it on a node of its service (``first``: the request of
        a server stream; ``None`` when the caller sends messages)."""
        local = self._local_pipe(header)
        if local is not None:
            return local.open_stream(header, first)
        namespace = await self._admit(header)
        return await self.router.open_stream(header, first, namespace=namespace)

    def _span(self, header: frames.RequestHeader) -> Span | None:
        """The span of a call forwarded for a caller on the native wire (the CLI, another
        proxy), sent on as the callee's parent. Calls the edges hand over in process are
        not a hop of their own: the gateway's span covers them, and the gRPC edge passes
        its caller's context on as it came; the server's own services have their
        callers' spans."""
        local = self._local
        if local is not None and local.hosts(header.service):
            return None
        return forward_span(header)

    async def traced_unary(
        self, header: frames.RequestHeader, body: bytes, *, first: str = ""
    ) -> bytes:
        """:meth:`unary` in a span of the proxy's (for callers with no span of the edge's)."""
        span = self._span(header)  # (before the call starts: it sends the span on)
        return await _traced(span, self.unary(header, body, first=first))

    async def traced_stream(self, header: frames.RequestHeader, first: bytes | None) -> Stream:
        """:meth:`open_stream` in a span of the proxy's."""
        span = self._span(header)
        return await _traced(span, self.open_stream(header, first))

    async def _forward_unary(
        self,
        conn: Connection,
        stream_id: int,
        pending: TaskEnd,
        header: frames.RequestHeader,
        body: bytes,
        first: str = "",
    ) -> None:
        pending.started = True
        try:
            data = await self.traced_unary(header, body, first=first)
            conn.send(frames.encode_frame(stream_id, frames.RESPONSE, 0, data))
        except errors.MicroError as exc:
            conn.send(frames.encode_frame(stream_id, frames.ERROR, 0, exc.to_json()))
        except asyncio.CancelledError:
            pass
        finally:
            conn.forget(stream_id, pending)

    async def _forward_stream(
        self, down: Stream, header: frames.RequestHeader, body: bytes, flags: int
    ) -> None:
        up: Stream | None = None
        pump: asyncio.Task[None] | None = None
        try:
            first = None if flags & frames.NO_BODY else body
            up = await self.traced_stream(header, first)
            if first is None:
                pump = asyncio.get_running_loop().create_task(_pump(down, up))
            await _pump(up, down)
        except errors.MicroError as exc:
            if not down.finished:
                down.fail(exc)
        except asyncio.CancelledError:
            if up is not None:
                up.cancel()
        finally:
            if pump is not None:
                pump.cancel()
            down.conn.forget(down.id, down)


T = TypeVar("T")


async def _traced(span: Span | None, work: Awaitable[T]) -> T:
    """Await ``work``, ending ``span`` (if any) with its outcome."""
    try:
        result = await work
    except BaseException as exc:
        if span is not None:
            forward_failed(span, exc)
        raise
    if span is not None:
        span.end()
    return result


def _hops(metadata: dict[str, str]) -> int:
    raw = metadata.get("micro-hops", "")
    return int(raw) if raw.isdigit() and len(raw) < 4 else 0


async def _pump(src: Stream, dst: Stream) -> None:
    """Copy messages from ``src`` to ``dst`` until the end; errors travel on."""
    while True:
        try:
            data = await src.recv()
        except StopAsyncIteration:
            dst.end()
            return
        await dst.send(data)
