"""Bounds on what one HTTP client may hold of a listener: uvicorn's httptools protocol with
a header deadline, a header size limit and a connection limit.

uvicorn arms no timer on a new connection, nor on a request whose headers trickle in (its
keep-alive timer stops at the first byte), and httptools buffers headers of any size before
a callback sees them. So:

- **Header deadline.** From a connection's start, and from the first byte of each request
  on a kept-alive one, the request line and headers must arrive within ``header_timeout``:
  else 408 (or a silent close when nothing came at all). One sweep per listener checks the
  deadlines, so a request costs a clock read, not a timer.
- **Header size.** The bytes read while a request's headers are incomplete are counted as
  they arrive, and the whole header is measured once parsed: over ``max_header``, 431 with
  Micro's error JSON and the connection closes. So at most ``max_header`` and one socket
  read are held for a client's headers.
- **Connections.** Past ``max_connections`` open connections of the listener, a new one is
  answered 503 and closed at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from micro import errors

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["HttpLimits", "guarded_protocol"]

_ID = "micro.http"


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one HTTP listener allows each client (the ``MICRO_HTTP_*`` settings)."""

    header_timeout: float = 10.0
    max_header: int = 32 * 1024
    idle_timeout: float = 5.0
    max_connections: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        """The limits the settings ask for."""
        return cls(
            settings.http_header_timeout,
            settings.http_max_header,
            settings.http_idle_timeout,
            settings.http_max_connections,
        )


class _Refused(Exception):
    """Stops the parser after the protocol has answered and closed the connection."""


def guarded_protocol(limits: HttpLimits) -> type[Any]:
    """uvicorn's httptools protocol class, bounded by ``limits`` (one class per listener:
    its connections share one sweep of their header deadlines)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    sweep: list[asyncio.TimerHandle] = []
    tick = max(0.05, min(1.0, limits.header_timeout / 4))
    max_header = limits.max_header
    # uvicorn's own methods, called directly: a request passes each once (no super() lookup)
    feed = HttpToolsProtocol.data_received
    headers_complete = HttpToolsProtocol.on_headers_complete

    class GuardedHttp(HttpToolsProtocol):
        """See the module docstring."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._refused = False
            self._in_headers = True
            self._header_bytes = 0
            """Bytes read of the request's incomplete headers."""
            self._read = 0
            """Bytes read since the request began (a bound on its headers' size)."""
            self._since = 0.0
            """When the request (or the connection) began, while its headers are awaited."""

        def connection_made(self, transport: Any) -> None:
            if len(self.connections) >= limits.max_connections:
                self._refused = True
                _answer(transport, 503, "too many connections: try again later")
                return
            super().connection_made(transport)
            self._since = self.loop.time()
            if not sweep:
                sweep.append(self.loop.call_later(tick, self._sweep))

        def connection_lost(self, exc: Exception | None) -> None:
            if self.transport is not None:  # (None: refused before being served)
                super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            began_in_headers = self._in_headers
            if began_in_headers:
                if not self._since:
                    self._since = self.loop.time()
                self._read = self._header_bytes + len(data)
            feed(self, data)
            if self._in_headers:
                if self._refused:
                    return
                # Headers still incomplete: all of this read was header bytes (unless it
                # also ended a previous request, pipelined; then it is not counted).
                self._header_bytes = self._read if began_in_headers else 0
                if self._header_bytes > max_header:
                    self._refuse_headers()
            else:
                cycle = self.cycle
                if cycle is not None and not cycle.more_body:
                    self._in_headers = True  # the next bytes begin the next request

        def send_400_response(self, msg: str) -> None:
            if not self._refused:  # (after a refusal the parser's stop is no client error)
                super().send_400_response(msg)

        def on_headers_complete(self) -> None:
            if self._read > max_header:  # (else the headers are smaller still)
                size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
                if size > max_header:
                    self._refuse_headers()
                    raise _Refused
            self._in_headers = False
            self._header_bytes = self._read = 0
            self._since = 0.0
            headers_complete(self)

        def _refuse_headers(self) -> None:
            self._refuse(
                431,
                f"the request's headers are larger than {limits.max_header} bytes "
                "(MICRO_HTTP_MAX_HEADER)",
            )

        def _refuse(self, code: int, detail: str) -> None:
            self._refused = True
            _answer(self.transport, code, detail)

        def _sweep(self) -> None:
            """Close the connections whose headers are late (all of this listener's)."""
            sweep.clear()
            deadline = self.loop.time() - limits.header_timeout
            for conn in list(self.connections):
                if isinstance(conn, GuardedHttp) and 0 < conn._since < deadline:
                    conn._header_late()
            if self.connections:
                sweep.append(self.loop.call_later(tick, self._sweep))

        def _header_late(self) -> None:
            self._since = 0.0
            if self._refused or self.transport.is_closing():
                return
            if self._header_bytes:
                self._refuse(408, f"the request's headers took over {limits.header_timeout}s")
            else:
                self._refused = True
                self.transport.close()

    return GuardedHttp


def _answer(transport: Any, code: int, detail: str) -> None:
    """Write Micro's error JSON with status ``code`` and close."""
    error = errors.new(_ID, detail, code)
    body = error.to_json()
    head = (
        f"HTTP/1.1 {code} {error.status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    transport.write(head.encode("latin-1") + body)
    transport.close()
