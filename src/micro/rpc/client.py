"""The RPC client: call any service by name, unary or streaming.

Calls to the platform's core services go to the proxy (``MICRO_PROXY``). Calls to other
services go straight to one of their nodes, picked by the process's
:class:`~micro.routing.Router` (round robin, breakers, retries by the ``resilience``
config), unless the client is told to send everything through the proxy (the CLI does,
since a remote server's nodes are not reachable from a laptop; the proxy then routes).

A failure to *connect* is retried on another node; once a request has been sent, the
handler may have run, so the call is made again only when its endpoint is idempotent
(:func:`micro.rpc.endpoint.idempotent`), within the policy's retries and retry budget.

A caller's own token (``authorization``) only ever goes to the proxy. A call that goes
straight to a node carries instead a token bound to that one service, got through the
client's :data:`Exchange` (``Auth.Exchange``), or none: a service is never handed a token
it could replay elsewhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from micro import errors
from micro.codec import MSGPACK, codec_for
from micro.routing.table import CORE_SERVICES
from micro.rpc import context
from micro.rpc.types import ClientCall, ClientMiddleware, Next
from micro.wire import frames
from micro.wire.connection import Connection
from micro.wire.pool import Pool
from micro.wire.stream import Stream

if TYPE_CHECKING:
    from micro.routing.router import Router

__all__ = ["CORE_SERVICES", "Client", "ClientStream", "Exchange"]

T = TypeVar("T")

_NO_REQUEST: Final = object()

Exchange = Callable[[str, str, str], Awaitable[str]]
"""(the caller's ``authorization`` value, service, namespace) -> the ``authorization``
value of a token bound to that service (:mod:`micro.auth.exchange`)."""


class ClientStream(Generic[T]):
    """A streaming call from the caller's side: send requests, iterate responses."""

    def __init__(self, stream: Stream, content_type: str, response_type: Any) -> None:
        self._stream = stream
        self._codec = codec_for(content_type)
        self._response_type = response_type

    async def send(self, message: Any) -> None:
        """Send one request message (client and bidi streaming)."""
        await self._stream.send(self._codec.encode(message))

    def close_send(self) -> None:
        """Say that no more requests will come."""
        self._stream.end()

    async def recv(self) -> T:
        """The next response; ``StopAsyncIteration`` at the end; the call's error if it failed."""
        data = await self._stream.recv()
        result: T = self._codec.decode(data, self._response_type)
        return result

    async def response(self) -> T:
        """For client streaming: close the sending side and wait for the one response."""
        self.close_send()
        return await self.recv()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                item = await self.recv()
            except StopAsyncIteration:
                return
            yield item

    async def close(self) -> None:
        """Cancel the call if it has not finished."""
        if not self._stream.finished:
            self._stream.cancel()

    async def __aenter__(self) -> ClientStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Client:
    """Calls services by name."""

    def __init__(
        self,
        *,
        proxy: str | None = None,
        router: Router | None = None,
        via_proxy: bool = False,
        content_type: str = MSGPACK,
        timeout: float = 10.0,
        middleware: Sequence[ClientMiddleware] = (),
        metadata: dict[str, str] | None = None,
        pool: Pool | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        self.proxy = proxy
        self.exchange = exchange
        """How a call straight to a node gets a token for it; without one, such calls go
        without the caller's token."""
        self.via_proxy = via_proxy
        """Every call through the proxy (which routes them), even with a router."""
        self.content_type = content_type
        self.timeout = timeout
        # Metadata keys are lower case on the wire, as per-call metadata already is.
        self.metadata = {k.lower(): v for k, v in (metadata or {}).items()}
        self.pool = pool or (router.pool if router is not None else Pool())
        self.router = router
        """Picks the nodes of calls made straight to services (``None``: all via the proxy)."""
        self._unary: Next = self._send_unary
        self._open: Next = self._open_stream
        for mw in reversed(middleware):
            self._unary = _wrap(mw, self._unary)
            self._open = _wrap(mw, self._open)

    # -- unary ----------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        endpoint: str,
        request: Any = None,
        *,
        response_type: type[T] | Any = Any,
        timeout: float | None = None,
        metadata: dict[str, str] | None = None,
        address: str | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Call ``service``'s ``endpoint`` with ``request``; returns the decoded response."""
        ct = content_type or self.content_type
        codec = codec_for(ct)
        body = codec.encode({} if request is None else request)
        data = await self.call_raw(
            service,
            endpoint,
            body,
            content_type=ct,
            timeout=timeout,
            metadata=metadata,
            address=address,
        )
        try:
            return codec.decode(data, response_type)
        except errors.BadRequest as exc:
            raise errors.BadGateway(service, f"unexpected response: {exc.detail}") from None

    async def call_raw(
        self,
        service: str,
        endpoint: str,
        body: bytes,
        *,
        content_type: str | None = None,
        timeout: float | None = None,
        metadata: dict[str, str] | None = None,
        address: str | None = None,
    ) -> bytes:
        """Call with an encoded body and get the encoded response (gateway and CLI use this)."""
        call = self._client_call(service, endpoint, body, content_type, timeout, metadata, address)
        data: bytes = await self._unary(call)
        return data

    # -- streaming ------------------------------------------------------------------------

    async def stream(
        self,
        service: str,
        endpoint: str,
        request: Any = _NO_REQUEST,
        *,
        response_type: type[T] | Any = Any,
        timeout: float | None = None,
        metadata: dict[str, str] | None = None,
        address: str | None = None,
        content_type: str | None = None,
    ) -> ClientStream[Any]:
        """Open a streaming call. Pass ``request`` for server streaming; omit it to send
        messages yourself (client and bidi streaming). Use as ``async with``."""
        ct = content_type or self.content_type
        body = None if request is _NO_REQUEST else codec_for(ct).encode(request)
        call = self._client_call(service, endpoint, body, ct, timeout, metadata, address)
        if timeout is None:
            # A stream lives as long as it is read, unless told otherwise or opened while
            # serving a call: then it ends with that call's deadline.
            call.timeout = context.deadline_left()
        stream: Stream = await self._open(call)
        return ClientStream(stream, ct, response_type)

    # -- internals ------------------------------------------------------------------------

    def _client_call(
        self,
        service: str,
        endpoint: str,
        body: bytes | None,
        content_type: str | None,
        timeout: float | None,
        metadata: dict[str, str] | None,
        address: str | None,
    ) -> ClientCall:
        md = dict(self.metadata)
        serving = context.current()
        if serving is not None:
            for key in context.PROPAGATED:
                value = serving.metadata.get(key)
                if value is not None:
                    md.setdefault(key, value)
        if metadata:
            md.update({k.lower(): v for k, v in metadata.items()})
        wait = self.timeout if timeout is None else timeout
        left = context.deadline_left()
        if left is not None:
            if left <= 0:
                raise errors.Timeout(service, f"deadline exceeded before calling {service}")
            wait = min(wait, left)
        return ClientCall(
            service, endpoint, md, content_type or self.content_type, body, wait, address
        )

    async def _send_unary(self, call: ClientCall) -> bytes:
        router = self._routed(call)
        if router is not None:
            await self._bind(call)
            namespace = call.metadata.get("micro-namespace", "micro")
            return await router.unary(_header(call), call.body or b"", namespace=namespace)
        conn = await self._connect(call)
        data: bytes = await conn.unary(_header(call), call.body or b"", call.timeout)
        return data

    async def _open_stream(self, call: ClientCall) -> Stream:
        router = self._routed(call)
        if router is not None:
            await self._bind(call)
            namespace = call.metadata.get("micro-namespace", "micro")
            return await router.open_stream(_header(call), call.body, namespace=namespace)
        conn = await self._connect(call)
        stream: Stream = conn.open_stream(_header(call), call.body)
        return stream

    def _routed(self, call: ClientCall) -> Router | None:
        """The router when the call goes straight to a node of its service, else None."""
        if call.address is not None or self.via_proxy or call.service in CORE_SERVICES:
            return None
        return self.router  # None: through the proxy

    async def _connect(self, call: ClientCall) -> Connection:
        """The connection of a call to a given address or through the proxy; for one
        straight to a node, its token exchanged for one bound to the service first."""
        if call.address is not None and call.address != self.proxy:
            await self._bind(call)
            return await self.pool.get(call.address)
        if self.proxy is None:
            raise errors.ServiceUnavailable(call.service, "no proxy address is configured")
        return await self.pool.get(self.proxy)

    async def _bind(self, call: ClientCall) -> None:
        credential = call.metadata.pop("authorization", None)
        if credential and self.exchange is not None:
            namespace = call.metadata.get("micro-namespace", "micro")
            call.metadata["authorization"] = await self.exchange(
                credential, call.service, namespace
            )

    async def close(self) -> None:
        """Close every connection of this client (and its router's watches)."""
        if self.router is not None:
            await self.router.close()
        await self.pool.close()


def _header(call: ClientCall) -> frames.RequestHeader:
    return frames.RequestHeader(
        call.service,
        call.endpoint,
        call.content_type,
        (call.timeout or 0.0) * 1000,
        call.metadata,
    )


def _wrap(mw: ClientMiddleware, nxt: Next) -> Next:
    # A plain function handing back the middleware's coroutine: no frame that only awaits.
    def wrapped(call: ClientCall) -> Awaitable[Any]:
        return mw(call, nxt)

    return wrapped
