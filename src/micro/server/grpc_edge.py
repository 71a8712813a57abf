"""The gRPC edge: plain gRPC clients in any language reach every service of the platform.

A call to ``/<service>.<Handler>/<Method>`` (``/helloworld.Helloworld/Call``) becomes a
native call to endpoint ``Handler.Method`` of ``service``, handed to the proxy's forwarder
(an :class:`~micro.rpc.upstream.Upstream`), so it passes the same door and reaches the
same nodes as a native call. grpcio is used here only (the optional ``grpc`` extra); bodies
pass through as bytes, never decoded on the way:

* **Content type.** grpcio does not show a handler the request's ``content-type`` (gRPC
  core parses the header into a flag meaning "some application/grpc" and publishes nothing
  of the ``+json``/``+proto`` subtype; grpc-js and grpcio clients always send plain
  ``application/grpc`` anyway). So the body tells: one starting with ``{`` or ``[`` is JSON,
  anything else (the empty message included) is protobuf. Those two bytes cannot start a
  proto3 message (they are group tags), whereas whitespace can (``\\n`` is the tag of field 1),
  so a JSON body must start with its bracket. A client stream that carries no message at
  all is protobuf when the endpoint's registered schema is a protobuf message's
  (``x-protobuf``), else JSON. A ``micro-content-type`` metadata entry
  (``application/json``, ``application/protobuf``) overrides the guess; a bidi client that
  waits for the service to speak first must send it, as the edge otherwise waits for the
  client's first message to tell.
* **Shapes.** grpcio's generic handlers must say a method's shape before any request is
  read, and cannot wait for anything to decide. All four shapes are the same thing on the
  wire (a stream of messages each way), so every method is served as a bidi stream, and the
  edge decides after an awaitable lookup which native call to make: unary, or a server-,
  client- or bidi stream, from the endpoint's ``stream_type`` in the server's cached
  routes (:mod:`micro.routing.table`). An endpoint the registry does not list is called
  as unary, so the door and the service answer for it.
* **Metadata** (lower case) becomes call metadata, except ``grpc-*`` keys and binary
  ``-bin`` ones; ``authorization`` and ``micro-namespace`` reach the door as they are.
  What only the platform may say is cleaned as :mod:`micro.server.client_metadata` says
  (``micro-caller-*`` dropped, ``micro-remote-address`` is the client's peer address).
  gRPC itself refuses metadata over 16 KiB (``RESOURCE_EXHAUSTED``), before the edge.
  The gRPC deadline becomes the call's timeout.
* **Errors.** A Micro error becomes the gRPC status for its code (:data:`STATUS_BY_CODE`)
  with Micro's error JSON as the details and in the ``micro-error`` trailer. Nothing else
  escapes: an unexpected failure is logged here and answered as INTERNAL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Final, NamedTuple

from micro import codec, errors
from micro.routing import RouteTable
from micro.rpc.upstream import Upstream
from micro.server.client_metadata import from_client, grpc_peer_address
from micro.settings import Settings
from micro.wire import frames
from micro.wire.stream import Stream

__all__ = [
    "CONTENT_TYPE_KEY",
    "STATUS_BY_CODE",
    "GrpcEdge",
    "Route",
    "Shape",
    "call_metadata",
    "content_type_of",
    "create",
    "parse_method",
    "status_name",
]

log = logging.getLogger("micro.grpc")

STATUS_BY_CODE: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""Micro error code -> name of the gRPC status it becomes (any other code: ``INTERNAL``)."""

CONTENT_TYPE_KEY: Final = "micro-content-type"
"""Metadata a client may send to name its bodies' content type instead of letting the edge
guess from the first byte."""

_TRANSPORT_HEADERS: Final = frozenset(
    {"accept-encoding", "content-encoding", "content-length", "content-type", "te"}
)
"""HTTP/2 headers of the gRPC transport, not of the call (grpc-js sends ``accept-encoding``)."""


class Route(NamedTuple):
    """Where a gRPC method path leads."""

    service: str
    endpoint: str


def parse_method(path: str) -> Route:
    """``/helloworld.Helloworld/Call`` -> ``Route("helloworld", "Helloworld.Call")``.

    The service is everything before the last dot of the first segment, so dotted names
    (``/go.micro.srv.greeter.Greeter/Hello``) work. Raises ``ValueError`` saying what is wrong.
    """
    parts = path.split("/")
    if len(parts) == 3 and not parts[0] and parts[2]:
        service, dot, handler = parts[1].rpartition(".")
        if dot and service and handler:
            return Route(service, f"{handler}.{parts[2]}")
    raise ValueError(f"malformed gRPC method {path!r}: expected /<service>.<Handler>/<Method>")


def status_name(code: int) -> str:
    """The name of the gRPC status for a Micro error code."""
    return STATUS_BY_CODE.get(code, "INTERNAL")


def call_metadata(pairs: Iterable[tuple[str, str | bytes]]) -> dict[str, str]:
    """The call metadata of a gRPC request's metadata: lower-case keys, without gRPC's own
    (``grpc-*``), binary values (``-bin``), pseudo-headers and HTTP/2 transport headers
    (``accept-encoding``, ``te``...); repeated keys are joined with commas, as HTTP does."""
    out: dict[str, str] = {}
    for key, value in pairs:
        key = key.lower()
        if (
            key.startswith(("grpc-", ":"))
            or key.endswith("-bin")
            or key in _TRANSPORT_HEADERS
            or isinstance(value, bytes)
        ):
            continue
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def content_type_of(body: bytes | None, *, takes_protobuf: bool = True) -> str:
    """JSON for a body that starts with ``{`` or ``[``, protobuf for any other (see the
    module's docstring for why whitespace does not count). A stream the client sent no
    message on (``None``) says nothing: it is protobuf when the endpoint takes protobuf."""
    if body is None:
        return codec.PROTOBUF if takes_protobuf else codec.JSON
    if body and body[0] in b"{[":
        return codec.JSON
    return codec.PROTOBUF


class Shape(NamedTuple):
    """What the edge needs to know of an endpoint before calling it."""

    kind: str
    """``unary``, ``server``, ``client`` or ``bidi``."""
    takes_protobuf: bool
    """Its request is a protobuf message (its schema says ``x-protobuf``)."""


_UNLISTED: Final = Shape("unary", takes_protobuf=True)
"""An endpoint the registry does not list: called as unary, and its service answers."""


async def shape_of(routes: RouteTable, namespace: str, service: str, endpoint: str) -> Shape:
    """The shape of ``endpoint`` from the server's cached routes (:data:`_UNLISTED` when
    the registry does not list it)."""
    try:
        route = routes.cached(service, namespace) or await routes.lookup(service, namespace)
    except errors.NotFound:
        return _UNLISTED
    info = route.endpoints.get(endpoint)
    if info is None:
        return _UNLISTED
    return Shape(info.kind, "x-protobuf" in info.request)


class GrpcEdge:
    """A ``grpc.aio`` server on the server's event loop, serving every method path."""

    def __init__(
        self,
        address: str,
        upstream: Upstream,
        routes: RouteTable,
        *,
        tls: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.address = address
        self._upstream = upstream
        self._tls = tls
        self._routes = routes
        self._server: Any = None

    async def start(self) -> str:
        """Listen; the address gRPC clients dial."""
        import grpc  # type: ignore[import-untyped,unused-ignore]  # grpcio ships no type hints

        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", frames.DEFAULT_MAX_FRAME),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not silently shared
            ]
        )
        server.add_generic_rpc_handlers((self,))
        try:
            if self._tls is None:
                port = server.add_insecure_port(self.address)
            else:
                key, cert = self._tls
                port = server.add_secure_port(
                    self.address, grpc.ssl_server_credentials([(key, cert)])
                )
        except RuntimeError as exc:
            raise OSError(f"cannot listen for gRPC on {self.address}: {exc}") from None
        if not port:
            raise OSError(f"cannot listen for gRPC on {self.address}")
        await server.start()
        self._server = server
        host = self.address.rpartition(":")[0]
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{host}:{port}"

    async def stop(self) -> None:
        """Stop listening; in-flight calls get a short grace period."""
        if self._server is not None:
            await self._server.stop(5.0)

    # -- grpc's GenericRpcHandler interface -----------------------------------------------

    def service(self, details: Any) -> Any:
        """The handler of one call (grpcio asks per call, synchronously)."""
        import grpc  # type: ignore[import-untyped,unused-ignore]

        try:
            route = parse_method(details.method)
        except ValueError as exc:
            return grpc.stream_stream_rpc_method_handler(
                functools.partial(_unimplemented, str(exc))
            )
        return grpc.stream_stream_rpc_method_handler(functools.partial(self._serve, route))

    # -- calls ----------------------------------------------------------------------------

    async def _serve(
        self, route: Route, requests: AsyncIterator[bytes], context: Any
    ) -> AsyncIterator[bytes]:
        stream: Stream | None = None
        pump: asyncio.Task[None] | None = None
        ended = False
        try:
            metadata = from_client(
                call_metadata(context.invocation_metadata() or ()),
                grpc_peer_address(context.peer()),
            )
            explicit = metadata.pop(CONTENT_TYPE_KEY, None)
            namespace = metadata.get("micro-namespace") or "micro"
            shape = await shape_of(self._routes, namespace, route.service, route.endpoint)
            if shape.kind in ("unary", "server"):
                body = await _one(requests)
                header = _header(route, explicit or content_type_of(body), metadata, context)
                if shape.kind == "unary":
                    yield await self._upstream.unary(header, body)
                    return
                stream = await self._upstream.open_stream(header, body)
            else:
                first = None if explicit else await anext(requests, None)
                guess = content_type_of(first, takes_protobuf=shape.takes_protobuf)
                header = _header(route, explicit or guess, metadata, context)
                stream = await self._upstream.open_stream(header, None)
                pump = asyncio.get_running_loop().create_task(_send_all(first, requests, stream))
            while True:
                try:
                    data = await stream.recv()
                except StopAsyncIteration:
                    ended = True
                    return
                yield data
        except errors.MicroError as exc:
            _fail(context, exc)
        except Exception:
            log.exception("gRPC edge: call to %s %s failed", route.service, route.endpoint)
            _fail(
                context, errors.InternalServerError("micro.grpc", "internal error in the gRPC edge")
            )
        finally:
            if pump is not None:
                pump.cancel()
            if stream is not None and not ended:
                stream.cancel()  # the client went away, or the call failed: stop the node's work


def _header(
    route: Route, content_type: str, metadata: dict[str, str], context: Any
) -> frames.RequestHeader:
    remaining = context.time_remaining()
    timeout = 0.0 if remaining is None else max(remaining * 1000, 1.0)
    return frames.RequestHeader(route.service, route.endpoint, content_type, timeout, metadata)


async def _one(requests: AsyncIterator[bytes]) -> bytes:
    """The one request message of a unary or server-streaming call."""
    body = await anext(requests, None)
    if body is None or await anext(requests, None) is not None:
        raise errors.BadRequest("micro.grpc", "this method takes exactly one request message")
    return body


async def _send_all(first: bytes | None, requests: AsyncIterator[bytes], stream: Stream) -> None:
    """Relay the client's messages (``first`` already read) to the native stream, then end."""
    try:
        if first is not None:
            await stream.send(first)
        async for message in requests:
            await stream.send(message)
        stream.end()
    except errors.MicroError:
        pass  # the call failed: the reading side reports it
    except Exception as exc:  # grpcio could not read the client's stream: give up the call
        log.debug("gRPC edge: reading the client's messages failed: %r", exc)
        stream.cancel()


def _fail(context: Any, exc: errors.MicroError) -> None:
    import grpc  # type: ignore[import-untyped,unused-ignore]

    body = exc.to_json().decode()
    context.set_code(grpc.StatusCode[status_name(exc.code)])
    context.set_details(body)
    context.set_trailing_metadata((("micro-error", body),))


async def _unimplemented(
    message: str, requests: AsyncIterator[bytes], context: Any
) -> AsyncIterator[bytes]:
    _fail(context, errors.NotImplemented("micro.grpc", message))
    return
    yield  # an async generator, as grpcio expects of a stream handler


def _tls(settings: Settings) -> tuple[bytes, bytes] | None:
    """The proxy's key and certificate, which the edge serves TLS with too."""
    if not (settings.tls_cert_file and settings.tls_key_file):
        return None
    return Path(settings.tls_key_file).read_bytes(), Path(settings.tls_cert_file).read_bytes()


def create(settings: Settings, upstream: Upstream, routes: RouteTable) -> GrpcEdge | None:
    """The gRPC edge (``None`` when ``MICRO_GRPC_ADDRESS`` is ``off`` or grpcio is not
    installed: the ``grpc`` extra)."""
    if settings.grpc_address == "off":
        return None
    try:
        import grpc  # type: ignore[import-untyped,unused-ignore]  # noqa: F401 - is it there?
    except ImportError:
        log.info("gRPC edge not started: grpcio is not installed (the 'grpc' extra)")
        return None
    return GrpcEdge(settings.grpc_address, upstream, routes, tls=_tls(settings))
