"""The RPC server: serves the endpoints of one or more services on one listener.

It is the :class:`~micro.wire.Dispatcher` of every connection it accepts. Each call runs
in a task of its own, inside the call's deadline, through the server middleware chain
(composed once per endpoint at registration, not per call). A call for a service this
server does not host goes to :attr:`Server.fallback` when set: that is how the proxy
forwards.

Stopping is graceful: stop accepting, refuse new calls with 503, let in-flight calls
finish within a grace period, then cancel what is left.

With a :attr:`Server.door`, every call is admitted by it first; the handler then sees the
verified caller (``Call.account``, and ``micro-caller-*`` in the metadata) but not its
token. A server that is the platform's front door (``front_door=True``: ``micro server``'s)
also writes where each call came from, ``micro-remote-address``: the socket's peer, or,
for a call an edge of the same process makes over a pipe, what the edge says its own
client was. No caller over a socket can set it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from micro import errors
from micro.codec import Codec, codec_for
from micro.rpc import context
from micro.rpc.context import Call
from micro.rpc.endpoint import Endpoint
from micro.rpc.types import Handler, Observer, ServerMiddleware
from micro.wire import frames
from micro.wire.connection import Connection, TaskEnd
from micro.wire.pipe import IN_PROCESS
from micro.wire.stream import Stream
from micro.wire.transport import Address, listen, parse_address

if TYPE_CHECKING:
    from micro.auth.door import Door

__all__ = ["REMOTE_ADDRESS", "Fallback", "Server"]

log = logging.getLogger("micro.server")

REMOTE_ADDRESS = "micro-remote-address"
"""Metadata: where a call came from, as the platform's front door saw it."""

Fallback = Callable[[Connection, int, int, frames.RequestHeader, bytes], None]
"""Takes a call for a service the server does not host: (conn, stream id, flags, header, body)."""


class _Route:
    __slots__ = ("endpoint", "invoke", "observer", "service")

    def __init__(
        self, service: str, endpoint: Endpoint, invoke: Handler, observer: Observer | None = None
    ) -> None:
        self.service = service
        self.endpoint = endpoint
        self.invoke = invoke
        self.observer = observer
        """The route's observers as one (see :func:`_one_observer`); ``None`` for none."""


_NOT_BEGUN: Any = object()


def _one_observer(observers: Sequence[Observer]) -> Observer | None:
    """Several observers told as one, so that a call costs two method calls per observer
    and nothing more (a loop over a list of them cost as much as an observer)."""
    if not observers:
        return None
    head, *rest = observers
    tail = _one_observer(rest)
    return head if tail is None else _Pair(head, tail)


class _Pair:
    """Two observers as one: the first is told first, and told of the end last."""

    __slots__ = ("first", "second")

    def __init__(self, first: Observer, second: Observer) -> None:
        self.first = first
        self.second = second

    def begin(self, call: Call) -> tuple[Any, Any]:
        return self.first.begin(call), self.second.begin(call)

    def end(self, call: Call, begun: tuple[Any, Any], error: BaseException | None) -> None:
        self.second.end(call, begun[1], error)
        self.first.end(call, begun[0], error)


def _final_handler(ep: Endpoint) -> Handler:
    func = ep.func
    if ep.kind in ("server", "bidi"):
        if ep.takes_request:

            async def open_stream(call: Call) -> Any:
                return func(call.request)
        else:

            async def open_stream(call: Call) -> Any:
                return func()

        return open_stream
    # Plain functions handing back the handler's coroutine (and below, the middleware's):
    # the call runs as one coroutine per layer, with no frame in between that only awaits.
    if ep.takes_request:

        def invoke(call: Call) -> Awaitable[Any]:
            return func(call.request)  # type: ignore[no-any-return]
    else:

        def invoke(call: Call) -> Awaitable[Any]:
            return func()  # type: ignore[no-any-return]

    return invoke


def _wrap(mw: ServerMiddleware, nxt: Handler) -> Handler:
    def wrapped(call: Call) -> Awaitable[Any]:
        return mw(call, nxt)

    return wrapped


class _Serving(TaskEnd):
    """A unary call being served: its task cleans up in its own ``finally``, or here when
    cancelled before it ran."""

    __slots__ = ("conn", "server", "stream_id")

    def __init__(self, server: Server, conn: Connection, stream_id: int) -> None:
        # (TaskEnd's fields set here rather than by super().__init__(): one call less
        # per call served)
        self.task: asyncio.Task[None] | None = None
        self.started = self.expired = False
        self.server = server
        self.conn = conn
        self.stream_id = stream_id

    def never_ran(self) -> None:
        self.conn.forget(self.stream_id, self)
        self.server._done()


class Server:
    """Hosts services' endpoints and serves calls to them."""

    def __init__(
        self,
        *,
        middleware: Sequence[ServerMiddleware] = (),
        observers: Sequence[Observer] = (),
        max_frame: int = frames.DEFAULT_MAX_FRAME,
        ssl: ssl_module.SSLContext | None = None,
        front_door: bool = False,
    ) -> None:
        self.middleware: list[ServerMiddleware] = list(middleware)
        self.observers: list[Observer] = list(observers)
        """Told of every call to the services added after them (not of ``Debug.*``)."""
        self.front_door = front_door
        self.fallback: Fallback | None = None
        self.door: Door | None = None
        """When set, every call is admitted by it first (auth); the account lands on the call."""
        self.address: Address | None = None
        self.stats = {"requests": 0, "errors": 0}
        self._services: dict[str, dict[str, _Route]] = {}
        self._internal: dict[str, _Route] = {}
        self._max_frame = max_frame
        self._ssl = ssl
        self._listener: asyncio.Server | None = None
        self._conns: set[Connection] = set()
        self._inflight = 0
        self._streams: dict[Stream, asyncio.Task[None]] = {}
        self._stopping = False
        self._idle: asyncio.Event | None = None

    # -- hosting --------------------------------------------------------------------------

    def add(self, service: str, endpoints: Iterable[Endpoint]) -> None:
        """Host ``endpoints`` under ``service``; middleware and observers added later do not
        apply to them."""
        routes = self._services.setdefault(service, {})
        for ep in endpoints:
            if ep.name in routes:
                raise ValueError(f"endpoint {ep.name} is already served for {service}")
            handler = _final_handler(ep)
            for mw in reversed(self.middleware):
                handler = _wrap(mw, handler)
            routes[ep.name] = _Route(service, ep, handler, _one_observer(self.observers))

    def add_internal(self, endpoints: Iterable[Endpoint]) -> None:
        """Serve ``endpoints`` under every hosted service name (``Debug.*``), unadvertised."""
        for ep in endpoints:
            self._internal[ep.name] = _Route("", ep, _final_handler(ep))

    def hosts(self, service: str) -> bool:
        """True when this server hosts ``service`` itself."""
        return service in self._services

    def endpoints(self, service: str) -> list[Endpoint]:
        """The endpoints hosted for ``service``."""
        return [r.endpoint for r in self._services.get(service, {}).values()]

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, address: str | Address = "127.0.0.1:0") -> Address:
        """Listen; returns the bound address (port 0 becomes a real port)."""
        parsed = parse_address(address) if isinstance(address, str) else address
        self._listener, self.address = await listen(parsed, self._protocol, ssl=self._ssl)
        return self.address

    def _protocol(self) -> Connection:
        return Connection(dispatcher=self, max_frame=self._max_frame)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, drain in-flight calls for up to ``grace`` seconds, then close.

        Streaming calls end at once with 503 "shutting down": a watch has no end to wait
        for, and its caller reconnects (to another node, or to this one restarted).
        """
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
        for stream, task in list(self._streams.items()):
            if not stream.finished:
                stream.fail(
                    errors.ServiceUnavailable("micro.server", "the server is shutting down")
                )
            task.cancel()
        if self._inflight:
            self._idle = asyncio.Event()
            try:
                async with asyncio.timeout(grace):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("%d calls still running after %.1fs; cancelling", self._inflight, grace)
        for conn in list(self._conns):
            conn.close()
        for conn in list(self._conns):
            await conn.wait_closed()
        if self._listener is not None:
            await self._listener.wait_closed()

    # -- Dispatcher -----------------------------------------------------------------------

    def connection_made(self, conn: Connection) -> None:
        self._conns.add(conn)

    def connection_lost(self, conn: Connection) -> None:
        self._conns.discard(conn)

    def request_received(
        self, conn: Connection, stream_id: int, flags: int, payload: bytes
    ) -> None:
        try:
            header, body = frames.split_request(payload)
        except ValueError as exc:
            _reply_error(conn, stream_id, errors.BadRequest("micro.server", str(exc)))
            return
        if self.front_door and conn.peer != IN_PROCESS:
            header.metadata[REMOTE_ADDRESS] = conn.peer
        routes = self._services.get(header.service)
        if routes is None:
            if self.fallback is not None:
                self.fallback(conn, stream_id, flags, header, body)
                return
            _reply_error(
                conn,
                stream_id,
                errors.NotFound("micro.server", f"service {header.service} not found"),
            )
            return
        route = routes.get(header.endpoint) or self._internal.get(header.endpoint)
        error: errors.MicroError | None = None
        if route is None:
            error = errors.NotFound(
                "micro.server",
                f"endpoint {header.endpoint} not found for service {header.service}",
            )
        elif self._stopping:
            error = errors.ServiceUnavailable(header.service, f"{header.service} is shutting down")
        elif route.endpoint.streams != bool(flags & frames.STREAMING):
            how = "as a stream" if route.endpoint.streams else "as a unary call, not a stream"
            error = errors.BadRequest(header.service, f"{header.endpoint} must be called {how}")
        if error is not None:
            _reply_error(conn, stream_id, error)
            return
        assert route is not None
        self._inflight += 1
        self.stats["requests"] += 1
        loop = conn.loop
        if route.endpoint.kind == "unary":
            running = _Serving(self, conn, stream_id)
            conn.streams[stream_id] = running
            running.task = loop.create_task(
                self._serve_unary(conn, stream_id, header, body, route, running)
            )
        else:
            stream = Stream(conn, stream_id)
            conn.streams[stream_id] = stream
            if flags & frames.END_STREAM:
                stream.recv_ended()
            task = loop.create_task(self._serve_stream(stream, header, body, flags, route))
            stream.on_cancel = task.cancel
            self._streams[stream] = task
            task.add_done_callback(functools.partial(self._finished, conn, stream_id, stream))

    def _finished(
        self, conn: Connection, stream_id: int, end: object, task: asyncio.Task[None]
    ) -> None:
        # A done callback rather than a ``finally``: a task cancelled before its first step
        # (a CANCEL read together with its REQUEST) never runs its body, yet must be counted.
        # (Unary calls, the many, do it in their ``finally`` and :meth:`_Serving.never_ran`.)
        conn.forget(stream_id, end)
        if isinstance(end, Stream):
            self._streams.pop(end, None)
        self._done()

    # -- serving --------------------------------------------------------------------------

    def _call(
        self, conn: Connection, header: frames.RequestHeader, request: Any, stream: bool
    ) -> Call:
        deadline = conn.loop.time() + header.timeout / 1000 if header.timeout > 0 else None
        call = Call(
            header.service,
            header.endpoint,
            header.metadata,
            header.content_type,
            request,
            deadline,
            stream,
            conn.peer,
        )
        context._set(call)
        return call

    async def _serve_unary(
        self,
        conn: Connection,
        stream_id: int,
        header: frames.RequestHeader,
        body: bytes,
        route: _Route,
        running: _Serving,
    ) -> None:
        running.started = True
        observer = route.observer
        begun: Any = _NOT_BEGUN
        try:
            codec = codec_for(header.content_type)
            ep = route.endpoint
            request = codec.decode(body, ep.request_type) if ep.takes_request else None
            call = self._call(conn, header, request, False)
            if self.door is not None:
                # The door's cached decision needs no coroutine; only a miss awaits.
                account = self.door.admit_cached(header.metadata, header.service, header.endpoint)
                if account is False:
                    account = await self.door.admit(
                        header.metadata, header.service, header.endpoint
                    )
                self.door.present(header.metadata, account)
                call.account = account
                call.checked = True
            if observer is not None:
                begun = observer.begin(call)
            if call.deadline is not None:
                # One timer that cancels the task (asyncio.timeout_at, which does the same,
                # costs several times more per call in its own bookkeeping).
                timer = conn.loop.call_at(call.deadline, running.expire)
                try:
                    response = await route.invoke(call)
                finally:
                    timer.cancel()
            else:
                response = await route.invoke(call)
            data = codec.encode(response)
        except BaseException as exc:
            if running.expired and isinstance(exc, asyncio.CancelledError):
                exc = TimeoutError()  # the deadline's own cancel: answered 408, not re-raised
            if begun is not _NOT_BEGUN:  # (a call refused before it began is not observed)
                assert observer is not None
                observer.end(call, begun, exc)
            self._fail(conn, stream_id, header, exc)
            if not isinstance(exc, Exception | asyncio.CancelledError):
                raise
        else:
            if observer is not None:
                observer.end(call, begun, None)
            conn.send(frames.encode_frame(stream_id, frames.RESPONSE, 0, data))
        finally:
            conn.forget(stream_id, running)
            self._done()

    async def _serve_stream(
        self,
        stream: Stream,
        header: frames.RequestHeader,
        body: bytes,
        flags: int,
        route: _Route,
    ) -> None:
        conn = stream.conn
        ep = route.endpoint
        try:
            codec = codec_for(header.content_type)
            if ep.kind == "server":
                raw = await stream.recv() if flags & frames.NO_BODY else body
                request: Any = codec.decode(raw, ep.request_type) if ep.takes_request else None
            else:
                request = _incoming(stream, codec, ep.request_type)
            call = self._call(conn, header, request, True)
            if self.door is not None:
                # The door's cached decision needs no coroutine; only a miss awaits.
                account = self.door.admit_cached(header.metadata, header.service, header.endpoint)
                if account is False:
                    account = await self.door.admit(
                        header.metadata, header.service, header.endpoint
                    )
                self.door.present(header.metadata, account)
                call.account = account
                call.checked = True
            if call.deadline is not None:
                async with asyncio.timeout_at(call.deadline):
                    await self._answer_stream(stream, codec, ep, route, call)
            else:
                await self._answer_stream(stream, codec, ep, route, call)
        except BaseException as exc:
            if not stream.finished:
                error = _as_error(header, exc)
                if error is not None:
                    self._count_error(header, exc, error)
                    stream.fail(error)
            if not isinstance(exc, Exception | asyncio.CancelledError):
                raise

    async def _answer_stream(
        self, stream: Stream, codec: Codec, ep: Endpoint, route: _Route, call: Call
    ) -> None:
        observer = route.observer
        if observer is None:
            result = await route.invoke(call)
        else:
            begun = observer.begin(call)
            try:
                result = await route.invoke(call)
            except BaseException as exc:
                observer.end(call, begun, exc)
                raise
            observer.end(call, begun, None)
        if ep.kind == "client":
            stream.conn.send(
                frames.encode_frame(stream.id, frames.RESPONSE, 0, codec.encode(result))
            )
            stream.end_sent()
            return
        iterator: AsyncIterator[Any] = result
        try:
            async for item in iterator:
                await stream.send(codec.encode(item))
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        stream.end()

    def _fail(
        self, conn: Connection, stream_id: int, header: frames.RequestHeader, exc: BaseException
    ) -> None:
        error = _as_error(header, exc)
        if error is not None:
            self._count_error(header, exc, error)
            _reply_error(conn, stream_id, error)

    def _count_error(
        self, header: frames.RequestHeader, exc: BaseException, error: errors.MicroError
    ) -> None:
        self.stats["errors"] += 1
        if error.code >= 500 and not isinstance(exc, errors.MicroError):
            log.error("%s %s failed: %s", header.service, header.endpoint, exc, exc_info=exc)

    def _done(self) -> None:
        self._inflight -= 1
        if self._inflight == 0 and self._idle is not None:
            self._idle.set()


def _as_error(header: frames.RequestHeader, exc: BaseException) -> errors.MicroError | None:
    """The error to send for an exception; ``None`` when nobody is waiting (cancelled)."""
    if isinstance(exc, errors.MicroError):
        return exc
    if isinstance(exc, TimeoutError):
        return errors.Timeout(header.service, f"{header.endpoint} exceeded its deadline")
    if isinstance(exc, asyncio.CancelledError):
        return None
    if isinstance(exc, Exception):
        return errors.InternalServerError(header.service, f"{header.endpoint}: {exc}")
    return errors.ServiceUnavailable(header.service, f"{header.service} is shutting down")


def _reply_error(conn: Connection, stream_id: int, error: errors.MicroError) -> None:
    conn.send(frames.encode_frame(stream_id, frames.ERROR, 0, error.to_json()))


async def _incoming(stream: Stream, codec: Codec, tp: Any) -> AsyncIterator[Any]:
    """The caller's messages of a client- or bidi-streaming call, decoded."""
    while True:
        try:
            data = await stream.recv()
        except StopAsyncIteration:
            return
        yield codec.decode(data, tp)
