"""A small etcd v3 client over etcd's JSON gateway, for the etcd registry.

Why our own: the ``etcd3`` package is unmaintained and pins its own grpcio, and micro
depends on no async HTTP client. The gateway needs little: POSTs of small JSON bodies
(``/v3/kv/range``, ``/v3/kv/txn``, ``/v3/lease/grant``, ``/v3/lease/revoke``) and one
streaming response (``/v3/watch``: chunked, one JSON object a line). So this is HTTP/1.1
over asyncio streams: keep-alive connections in a small pool, ``Content-Length`` and
chunked bodies, and several endpoints (``http://a:2379,http://b:2379``) tried in turn.

On the wire keys and values are base64 and int64s are JSON strings; msgspec does both
(``bytes`` fields, ``strict=False``).

What this module raises, for the registry to map to micro errors in one place:
``OSError`` or ``TimeoutError`` when etcd cannot be reached or does not answer, and
:class:`EtcdError` when etcd answers with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "EtcdClient",
    "EtcdEndpoint",
    "EtcdError",
    "KeyValue",
    "WatchResult",
    "parse_endpoints",
    "prefix_end",
]

_MAX_HEAD = 100
"""Header lines we read before calling a response malformed."""
_PAGE = 1000
"""Keys per range request; larger reads page at one revision."""


class EtcdError(Exception):
    """etcd answered with an error: its gRPC ``code`` and ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class EtcdEndpoint:
    """One etcd client URL."""

    tls: bool
    host: str
    port: int

    def __str__(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


def parse_endpoints(address: str) -> list[EtcdEndpoint]:
    """The endpoints in ``address`` (comma-separated; ``http://`` when no scheme is given).

    Raises ``ValueError`` naming what is wrong.
    """
    found: list[EtcdEndpoint] = []
    for part in (p.strip() for p in address.split(",")):
        if not part:
            continue
        url = urlsplit(part if "://" in part else f"http://{part}")
        if url.scheme not in ("http", "https"):
            raise ValueError(f"etcd address {part!r}: the scheme must be http or https")
        if url.username or url.password:
            raise ValueError(f"etcd address {part!r}: credentials in the URL are not supported")
        if url.path not in ("", "/") or url.query:
            raise ValueError(f"etcd address {part!r}: give only scheme, host and port")
        try:
            port = url.port or 2379
        except ValueError:
            raise ValueError(f"etcd address {part!r}: the port is not a number") from None
        if not url.hostname:
            raise ValueError(f"etcd address {part!r}: no host")
        found.append(EtcdEndpoint(url.scheme == "https", url.hostname, port))
    if not found:
        raise ValueError("etcd address is empty (give e.g. http://127.0.0.1:2379)")
    return found


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that makes a range cover every key starting with ``prefix``."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"  # etcd's "every key"


# -- what etcd answers ------------------------------------------------------------------


class _Header(msgspec.Struct):
    revision: int = 0


class KeyValue(msgspec.Struct):
    """A key as etcd keeps it."""

    key: bytes
    value: bytes = b""
    create_revision: int = 0
    mod_revision: int = 0
    lease: int = 0


class _Range(msgspec.Struct):
    header: _Header = msgspec.field(default_factory=_Header)
    kvs: list[KeyValue] = []
    more: bool = False


class _Lease(msgspec.Struct):
    ID: int


class _Txn(msgspec.Struct):
    header: _Header = msgspec.field(default_factory=_Header)


class Event(msgspec.Struct):
    """A change seen by a watch: ``PUT`` or ``DELETE`` of ``kv`` (a delete has no value)."""

    kv: KeyValue
    type: str = "PUT"


class WatchResult(msgspec.Struct):
    """One message of a watch stream."""

    header: _Header = msgspec.field(default_factory=_Header)
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    events: list[Event] = []


class _WatchMessage(msgspec.Struct):
    result: WatchResult | None = None
    error: Any = None


class _Failure(msgspec.Struct):
    code: int = 2  # gRPC's Unknown
    message: str = ""
    error: Any = ""


_encode = msgspec.json.Encoder().encode


_range_decoder = msgspec.json.Decoder(_Range, strict=False)
_lease_decoder = msgspec.json.Decoder(_Lease, strict=False)
_txn_decoder = msgspec.json.Decoder(_Txn, strict=False)
_watch_decoder = msgspec.json.Decoder(_WatchMessage, strict=False)
_failure_decoder = msgspec.json.Decoder(_Failure, strict=False)


def _failure(status: int, body: bytes) -> EtcdError:
    if status == 404:
        return EtcdError(12, "no v3 JSON gateway here (not etcd's client URL, or etcd < 3.4?)")
    try:
        failure = _failure_decoder.decode(body)
    except msgspec.DecodeError:
        return EtcdError(2, f"HTTP {status}: {body[:200]!r}")
    return EtcdError(failure.code, failure.message or str(failure.error) or f"HTTP {status}")


# -- HTTP/1.1 ------------------------------------------------------------------------------


class _Connection:
    """One HTTP/1.1 connection; ``reusable`` once a response was read to its end."""

    def __init__(
        self, endpoint: EtcdEndpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.endpoint = endpoint
        self.reader = reader
        self.writer = writer
        self.reusable = False

    async def send(self, path: str, body: bytes) -> None:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.endpoint.host}:{self.endpoint.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        await self.writer.drain()

    async def head(self) -> tuple[int, dict[str, str]]:
        """The status and headers (names lower-cased) of the response."""
        self.reusable = False
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("etcd closed the connection")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ConnectionError(f"etcd sent a malformed status line: {line[:80]!r}")
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEAD):
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                return int(parts[1]), headers
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raise ConnectionError("etcd sent too many headers")

    async def body(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The response body in pieces, as they arrive."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while size_line := await self.reader.readline():
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self.reusable = headers.get("connection", "").lower() != "close"
                    return
                chunk = await self.reader.readexactly(size)
                await self.reader.readexactly(2)
                yield chunk
            raise ConnectionResetError("etcd closed the connection mid-response")
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
            self.reusable = headers.get("connection", "").lower() != "close"
            yield data
            return
        while data := await self.reader.read(65536):
            yield data

    def close(self) -> None:
        self.writer.close()


def _keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive, so a watch on a host that vanished (no RST) fails in about a minute."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


class EtcdClient:
    """The calls the registry makes, over a pool of keep-alive connections.

    ``timeout`` bounds each call, ``connect_timeout`` each connection attempt.
    """

    def __init__(
        self,
        endpoints: Sequence[EtcdEndpoint],
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        pool_size: int = 8,
    ) -> None:
        self.endpoints = list(endpoints)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._pool_size = pool_size
        self._idle: list[_Connection] = []
        self._preferred = 0
        self._ssl: ssl.SSLContext | None = None

    # -- the etcd calls ---------------------------------------------------------------------

    async def range_prefix(self, prefix: bytes) -> tuple[int, list[KeyValue]]:
        """Every key under ``prefix`` at one revision, and that revision."""
        found: list[KeyValue] = []
        request: dict[str, Any] = {"key": prefix, "range_end": prefix_end(prefix), "limit": _PAGE}
        while True:
            page = _range_decoder.decode(await self.call("/v3/kv/range", request))
            found.extend(page.kvs)
            revision = request.setdefault("revision", page.header.revision)
            if not page.more or not page.kvs:
                return revision, found
            request["key"] = page.kvs[-1].key + b"\0"

    async def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; its id."""
        return _lease_decoder.decode(await self.call("/v3/lease/grant", {"TTL": ttl})).ID

    async def revoke(self, lease: int) -> None:
        """End ``lease``, deleting the keys still attached to it."""
        await self.call("/v3/lease/revoke", {"ID": lease})

    async def txn(self, operations: list[dict[str, Any]]) -> int:
        """Apply ``operations`` (see :meth:`put` and :meth:`delete`) at one revision; it."""
        answer = await self.call("/v3/kv/txn", {"success": operations})
        return _txn_decoder.decode(answer).header.revision

    @staticmethod
    def put(key: bytes, value: bytes, lease: int = 0) -> dict[str, Any]:
        """A put for :meth:`txn` (``lease`` 0: none)."""
        request: dict[str, Any] = {"key": key, "value": value}
        if lease:
            request["lease"] = lease
        return {"request_put": request}

    @staticmethod
    def delete(key: bytes) -> dict[str, Any]:
        """A delete of one key for :meth:`txn`."""
        return {"request_delete_range": {"key": key}}

    async def watch(self, prefix: bytes, start_revision: int) -> AsyncGenerator[WatchResult, None]:
        """The messages of a watch on every key under ``prefix``, from ``start_revision``.

        Runs until etcd ends the stream (an ``OSError``) or cancels the watch (a message
        with ``canceled``; the caller stops reading there).
        """
        request = {
            "create_request": {
                "key": prefix,
                "range_end": prefix_end(prefix),
                "start_revision": start_revision,
            }
        }
        async with asyncio.timeout(self._timeout):
            conn = await self._connect()
        try:
            async with asyncio.timeout(self._timeout):
                await conn.send("/v3/watch", _encode(request))
                status, headers = await conn.head()
                if status != 200:
                    raise _failure(status, b"".join([p async for p in conn.body(headers)]))
            pending = b""
            async for piece in conn.body(headers):
                pending += piece
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    message = _watch_decoder.decode(line)
                    if message.error is not None:
                        raise _stream_failure(message.error)
                    if message.result is not None:
                        yield message.result
            raise ConnectionResetError("etcd ended the watch stream")
        finally:
            conn.close()

    async def close(self) -> None:
        """Close the idle connections (a call after this opens new ones)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- requests ---------------------------------------------------------------------------

    async def call(self, path: str, request: dict[str, Any]) -> bytes:
        """POST ``request`` to ``path``; the body of a 200, else :class:`EtcdError`."""
        body = _encode(request)
        async with asyncio.timeout(self._timeout):
            while self._idle:
                conn = self._idle.pop()
                try:
                    return await self._exchange(conn, path, body)
                except (ConnectionError, asyncio.IncompleteReadError):
                    # An idle connection etcd has closed meanwhile: try the next one.
                    continue
            return await self._exchange(await self._connect(), path, body)

    async def _exchange(self, conn: _Connection, path: str, body: bytes) -> bytes:
        try:
            await conn.send(path, body)
            status, headers = await conn.head()
            data = b"".join([piece async for piece in conn.body(headers)])
        except BaseException:
            conn.close()
            raise
        if conn.reusable and len(self._idle) < self._pool_size:
            self._idle.append(conn)
        else:
            conn.close()
        if status != 200:
            raise _failure(status, data)
        return data

    async def _connect(self) -> _Connection:
        """A new connection to the first endpoint that answers, starting with the last good."""
        last: OSError | TimeoutError | None = None
        count = len(self.endpoints)
        for step in range(count):
            index = (self._preferred + step) % count
            endpoint = self.endpoints[index]
            try:
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        endpoint.host,
                        endpoint.port,
                        ssl=self._tls() if endpoint.tls else None,
                        server_hostname=endpoint.host if endpoint.tls else None,
                        limit=1 << 20,
                    )
            except (OSError, TimeoutError) as exc:
                last = exc
                continue
            self._preferred = index
            _keepalive(writer)
            return _Connection(endpoint, reader, writer)
        assert last is not None
        raise last

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _stream_failure(error: Any) -> EtcdError:
    """The error object of a gateway stream: ``{"grpc_code", "message", ...}`` (or text)."""
    if isinstance(error, dict):
        return EtcdError(int(error.get("grpc_code", 2)), str(error.get("message", error)))
    return EtcdError(2, str(error))
