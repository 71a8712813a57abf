"""The gateway as an ASGI app: HTTP/JSON in, an RPC to the service out.

A bare ASGI callable rather than a framework: the hot path is resolve the path (cached),
find the route (cached), pass the JSON bytes on, write the answer, and nothing else.

Per request (reference §4): CORS; ``/`` answers the version; the path names the service
and endpoint; the namespace is ``Micro-Namespace``, else the token's issuer, else the
host's subdomain, else ``micro``; the token is ``Authorization: Bearer``, never a cookie;
the headers travel on as call metadata, cleaned as :mod:`micro.server.client_metadata`
says (no dashboard cookie, no ``micro-caller-*``; ``micro-remote-address`` is the
client's). The call passes the same door as a native call (401/403 by the namespace's
rules). Errors are Micro's JSON with the HTTP status of their code; an unknown service is
a 404. CORS is off unless ``MICRO_API_CORS_ORIGINS`` lists origins, and never allows credentials
(:mod:`micro.api.cors`). Nothing a caller sends is kept without a bound (in bytes): the
tokens' issuers, the routes of unknown services, the metrics of unknown endpoints.
``/metrics`` answers platform admins only (a bearer token of an admin of ``micro``): its
series name every namespace's services and endpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec

from micro import errors
from micro._bounded import BoundedDict
from micro.api.body import build_body
from micro.api.cors import Cors
from micro.api.metrics import Metrics
from micro.api.openapi import LIST_SERVICES, OpenAPI, service_names
from micro.api.resolve import resolve, subdomain_namespace, token_issuer
from micro.codec import JSON
from micro.routing import EndpointInfo, RouteTable
from micro.rpc.client import CORE_SERVICES
from micro.rpc.upstream import Upstream
from micro.server.client_metadata import from_client
from micro.trace.edges import request_span
from micro.trace.span import Span
from micro.wire.frames import MAX_BODY, RequestHeader

__all__ = ["Gateway", "Request"]

log = logging.getLogger("micro.api")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_ID: Final = "micro.api"
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
_CLOSE: Final = [(b"connection", b"close")]
_ISSUERS_BYTES: Final = 4 * 1024 * 1024
"""What the cache of tokens' issuers (which namespace a token routes to) may hold."""
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_SPECIAL: Final = frozenset({"/", "/favicon.ico", "/openapi.json", "/metrics"})


class _Text(msgspec.Struct):
    text: str = ""


_METRICS_TEXT: Final = msgspec.json.Decoder(_Text).decode


def _version() -> str:
    try:
        return version("micro-python")
    except PackageNotFoundError:
        return "dev"


class Request:
    """What the gateway reads off an HTTP or WebSocket request."""

    __slots__ = ("endpoint", "metadata", "namespace", "service")

    def __init__(self, service: str, endpoint: str, metadata: dict[str, str], namespace: str):
        self.service = service
        self.endpoint = endpoint
        self.metadata = metadata
        self.namespace = namespace


class Gateway:
    """The ASGI app; see the module docstring."""

    def __init__(
        self,
        upstream: Upstream,
        routes: RouteTable,
        *,
        max_body: int = MAX_BODY,
        cors_origins: tuple[str, ...] = (),
        timeout: float = 10.0,
    ) -> None:
        self.upstream = upstream
        self.routes = routes
        self.max_body = max_body
        self._cors = Cors(cors_origins)
        self.timeout_ms = timeout * 1000
        self.metrics = Metrics()
        self.openapi = OpenAPI(routes)
        self._version = msgspec.json.encode({"version": _version()})
        self._issuers: BoundedDict[str, str] = BoundedDict(_ISSUERS_BYTES)

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            from micro.api.streaming import websocket

            await websocket(self, scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        cors = self._cors
        extra = cors.headers(_header(scope, b"origin") if cors.by_origin else "")
        service = endpoint = ""
        known = False  # metrics name registered services' endpoints only
        status = 500
        span: Span | None = None
        try:
            if method == "OPTIONS":
                status = 200
                await _reply(send, 200, b"", extra)
                return
            if method not in _METHODS:
                raise errors.MethodNotAllowed(_ID, f"method {method} is not allowed")
            if path in _SPECIAL:
                status = 200
                await self._special(path, scope, extra, send)
                return
            resolved = resolve(path)
            if resolved is None:
                raise errors.NotFound(_ID, f"no service in path {path!r}")
            service, endpoint = resolved
            req = self.request(scope, service, endpoint)
            info = self._cached_endpoint(req) or await self.endpoint(req)
            known = True
            metadata = req.metadata
            span = request_span(f"{method} {path}", metadata, req.namespace)
            body = await self._read_body(receive, metadata.get("content-length", ""))
            payload = build_body(
                method, scope["query_string"], metadata.get("content-type", ""), body, info.request
            )
            if info.kind == "unary":
                data = await self.upstream.unary(self.header(req), payload)
                status = 200 if data else 204
                await _reply(send, status, data, _JSON_HEADERS + extra)
            elif info.kind == "server":
                from micro.api.streaming import http_stream

                status = 200
                await http_stream(self, scope, send, req, payload, extra)
            else:
                raise errors.BadRequest(
                    _ID, f"{endpoint} streams from the caller: call it over a WebSocket"
                )
        except errors.MicroError as exc:
            status = exc.code if 100 <= exc.code <= 599 else 500  # a service's odd code
            # (a body refused unread is not read at all: the connection closes after this)
            closing = _CLOSE if status == 413 else []
            await _reply(send, status, exc.to_json(), _JSON_HEADERS + extra + closing)
        except Exception as exc:  # never a traceback to the caller
            log.exception("api: %s %s failed", method, path)
            error = errors.InternalServerError(_ID, f"error during request: {exc}")
            await _reply(send, 500, error.to_json(), _JSON_HEADERS + extra)
        finally:
            if span is not None:
                span.end(status)
            if service:
                elapsed = time.perf_counter() - started
                if known:
                    self.metrics.observe(service, endpoint, status, elapsed)
                else:
                    self.metrics.observe_unknown(status, elapsed)

    async def _special(self, path: str, scope: Scope, extra: list[Any], send: Send) -> None:
        """``/``, ``/favicon.ico``, ``/openapi.json``, ``/metrics``: answered here. The
        OpenAPI document lists what the caller may list (see :mod:`micro.api.openapi`)."""
        if path == "/":
            await _reply(send, 200, self._version, _JSON_HEADERS + extra)
        elif path == "/favicon.ico":
            await _reply(send, 204, b"", extra)
        elif path == "/openapi.json":
            req = self.request(scope, "registry", LIST_SERVICES)
            names = service_names(await self.upstream.unary(self.header(req), b"{}"))
            document = await self.openapi.document(req.namespace, names)
            await _reply(send, 200, document, _JSON_HEADERS + extra)
        elif path == "/metrics":
            await self._metrics(scope, extra, send)

    async def _metrics(self, scope: Scope, extra: list[Any], send: Send) -> None:
        """``/metrics``: the server's, for platform admins only (its series name every
        namespace's services; the server's ``Debug.Metrics`` checks the caller, 401/403,
        and adds the core services' series). ``/metrics?service=NAME``: that service's
        own ``Debug.Metrics`` as Prometheus text, as a call to it (the namespace and its
        rules as for any call; only accounts of the namespace), so each service can be a
        scrape target."""
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        service = query.get("service", "")
        if service:
            if service in CORE_SERVICES:
                raise errors.BadRequest(_ID, f"{service} is the server's: GET /metrics")
            req = self.request(scope, service, "Debug.Metrics")
            text = _METRICS_TEXT(await self.upstream.unary(self.header(req), b"{}")).text
        else:
            req = self.request(scope, "registry", "Debug.Metrics")
            req.metadata["micro-namespace"] = "micro"
            core = await self.upstream.unary(self.header(req), b"{}")
            text = self.metrics.render().decode() + _METRICS_TEXT(core).text
        headers = [(b"content-type", b"text/plain; version=0.0.4"), *extra]
        await _reply(send, 200, text.encode(), headers)

    # -- pieces shared with streaming --------------------------------------------------------

    def request(self, scope: Scope, service: str, endpoint: str) -> Request:
        """The call a request makes: its metadata (the headers, cleaned) and namespace."""
        metadata = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        from_client(metadata, f"{client[0]}:{client[1]}" if client else None)
        namespace = self.namespace_of(scope, metadata)
        metadata["micro-namespace"] = namespace
        return Request(service, endpoint, metadata, namespace)

    def namespace_of(self, scope: Scope, metadata: dict[str, str]) -> str:
        """``Micro-Namespace``, else the token's issuer, else the subdomain, else ``micro``.
        (The token is read here only to route; the door verifies it.)"""
        explicit = metadata.get("micro-namespace")
        if explicit:
            return explicit
        auth = metadata.get("authorization", "")
        if auth:
            issuer = self._issuer(auth)
            if issuer:
                return issuer
        host = metadata.get("host", "")
        return (subdomain_namespace(host) if host else None) or "micro"

    def _issuer(self, authorization: str) -> str:
        cached = self._issuers.get(authorization)
        if cached is None:
            cached = token_issuer(authorization)
            self._issuers.set(authorization, cached)
        return cached

    def _cached_endpoint(self, req: Request) -> EndpointInfo | None:
        """The endpoint from the route cache, without awaiting (the hot path)."""
        route = self.routes.cached(req.service, req.namespace)
        return route.endpoints.get(req.endpoint) if route is not None else None

    async def endpoint(self, req: Request) -> EndpointInfo:
        """The endpoint's description; 404 for an unknown service or endpoint."""
        route = self.routes.cached(req.service, req.namespace)
        if route is None:
            route = await self.routes.wait_lookup(
                req.service, req.namespace, self.timeout_ms, who=_ID
            )
        info = route.endpoints.get(req.endpoint)
        if info is None:
            raise errors.NotFound(
                req.service, f"endpoint {req.endpoint} not found on service {req.service}"
            )
        return info

    def header(self, req: Request) -> RequestHeader:
        """The native call's header."""
        return RequestHeader(req.service, req.endpoint, JSON, self.timeout_ms, req.metadata)

    async def _read_body(self, receive: Receive, length: str) -> bytes:
        """The whole body; 413 as soon as it is known to be over :attr:`max_body`: by its
        ``Content-Length`` before reading any (nor inviting it with ``100 Continue``), so
        nothing that big is ever sent on."""
        if length and (len(length) > 18 or int(length) > self.max_body):
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise errors.BadRequest(_ID, "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self) -> errors.PayloadTooLarge:
        return errors.PayloadTooLarge(
            _ID, f"the request body is larger than {self.max_body} bytes (MICRO_API_MAX_BODY)"
        )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _reply(send: Send, status: int, body: bytes, headers: list[Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
