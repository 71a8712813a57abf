"""Streaming endpoints at the gateway (reference §4.7).

- Server streams over plain HTTP: each message as it comes, as Server-Sent Events when the
  caller accepts ``text/event-stream`` (``data: <json>``; an error is ``event: error``),
  else as JSON lines (``application/x-ndjson``).
- Every kind over a WebSocket: the caller's first message is the request of a server
  stream, or the first message of a client or bidi stream; each message the service
  sends is a text frame; an error is sent as Micro's error JSON, then the socket closes
  (code 1011). A unary endpoint answers each message the caller sends.

A slow reader slows the service down rather than filling memory: messages are pulled from
the native stream (which has credit-based flow control) only as fast as they are written.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final

from micro import errors
from micro.api.body import build_body
from micro.wire.stream import Stream

if TYPE_CHECKING:
    from micro.api.app import Gateway, Receive, Request, Scope, Send

__all__ = ["http_stream", "websocket"]

_ID: Final = "micro.api"


async def http_stream(
    gateway: Gateway, scope: Scope, send: Send, req: Request, payload: bytes, extra: list[Any]
) -> None:
    """Relay a server stream to an HTTP response, flushing each message."""
    accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
    sse = b"text/event-stream" in accept
    stream = await gateway.upstream.open_stream(gateway.header(req), payload)
    content_type = b"text/event-stream" if sse else b"application/x-ndjson"
    try:
        # the first message (or the error) before the status line: a call that fails at
        # once gets its error status, not a 200 with an error inside
        first = await stream.recv()
    except StopAsyncIteration:
        first = None
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), (b"cache-control", b"no-cache"), *extra],
        }
    )
    try:
        data = first
        while data is not None:
            chunk = b"data: " + data + b"\n\n" if sse else data + b"\n"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            try:
                data = await stream.recv()
            except StopAsyncIteration:
                data = None
    except errors.MicroError as exc:
        chunk = b"event: error\ndata: " + exc.to_json() + b"\n\n" if sse else exc.to_json() + b"\n"
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        if not stream.finished:
            stream.cancel()
    await send({"type": "http.response.body", "body": b""})


async def websocket(gateway: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one WebSocket: a call to the endpoint its path names."""
    from micro.api.resolve import resolve

    message = await receive()
    if message["type"] != "websocket.connect":
        return
    protocols = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": protocols[0] if protocols else None})
    stream: Stream | None = None
    try:
        resolved = resolve(scope["path"])
        if resolved is None:
            raise errors.NotFound(_ID, f"no service in path {scope['path']!r}")
        req = gateway.request(scope, *resolved)
        info = await gateway.endpoint(req)
        query = scope.get("query_string", b"")
        if info.kind == "unary":
            while (text := await _next(receive)) is not None:
                payload = build_body("POST", query, "application/json", text, info.request)
                await _send_text(send, await gateway.upstream.unary(gateway.header(req), payload))
            return
        if info.kind == "server":
            first = await _next(receive)
            if first is None:
                return
            payload = build_body("POST", query, "application/json", first, info.request)
            stream = await gateway.upstream.open_stream(gateway.header(req), payload)
            watcher = asyncio.get_running_loop().create_task(_until_closed(receive, stream))
        else:
            stream = await gateway.upstream.open_stream(gateway.header(req), None)
            watcher = asyncio.get_running_loop().create_task(_forward(receive, stream, info))
        try:
            while True:
                try:
                    data = await stream.recv()
                except StopAsyncIteration:
                    break
                await _send_text(send, data)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        await send({"type": "websocket.close", "code": 1000})
    except errors.MicroError as exc:
        await _fail(send, exc)
    except _Gone:
        pass
    except Exception as exc:  # never a traceback to the caller
        await _fail(send, errors.InternalServerError(_ID, f"error during request: {exc}"))
    finally:
        if stream is not None and not stream.finished:
            stream.cancel()


class _Gone(Exception):
    """The caller closed the socket."""


async def _next(receive: Receive) -> bytes | None:
    """The caller's next message as bytes; ``None`` when it closed the socket."""
    message = await receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    return text.encode() if text is not None else bytes(message.get("bytes") or b"")


async def _send_text(send: Send, data: bytes) -> None:
    await send({"type": "websocket.send", "text": data.decode("utf-8", errors="replace")})


async def _fail(send: Send, exc: errors.MicroError) -> None:
    with contextlib.suppress(Exception):
        await _send_text(send, exc.to_json())
        await send({"type": "websocket.close", "code": 1011})


async def _until_closed(receive: Receive, stream: Stream) -> None:
    """A server stream: nothing more comes from the caller; its leaving ends the call."""
    while await _next(receive) is not None:
        pass
    stream.cancel()


async def _forward(receive: Receive, stream: Stream, info: Any) -> None:
    """A client or bidi stream: the caller's messages go to the service, in order."""
    while (data := await _next(receive)) is not None:
        await stream.send(build_body("POST", b"", "application/json", data, info.request))
    stream.end()
