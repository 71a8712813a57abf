"""Addresses, listening and connecting for the native wire: TCP, Unix sockets, TLS.

An address is ``host:port`` (``:port`` listens on every interface, as in Go), ``unix:/path``,
or either prefixed with ``tls://`` to require TLS. Port 0 is allowed everywhere: the
bound address is read back from the socket. A listener guards the connections it accepts
(:mod:`micro.wire.guard`) with the limits of this process's settings unless told others.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import ssl as ssl_module
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from micro import errors
from micro.wire.connection import Connection
from micro.wire.guard import Guard, Limits

__all__ = ["Address", "connect", "install_loop", "listen", "parse_address", "run"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed wire address."""

    host: str = ""
    port: int = 0
    path: str = ""
    tls: bool = False

    @property
    def is_unix(self) -> bool:
        """True for a Unix socket path."""
        return bool(self.path)

    def __str__(self) -> str:
        base = f"unix:{self.path}" if self.path else f"{_host_text(self.host)}:{self.port}"
        return f"tls://{base}" if self.tls else base


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_address(text: str, *, default_port: int | None = None) -> Address:
    """Parse ``[tls://]host:port``, ``[tls://]:port`` or ``[tls://]unix:/path``.

    Raises ``ValueError`` naming what is wrong with the text.
    """
    raw = text.strip()
    tls = False
    for prefix in ("tls://", "https://"):
        if raw.startswith(prefix):
            tls, raw = True, raw[len(prefix) :]
    if raw.startswith("unix:"):
        path = raw[5:]
        path = path[2:] if path.startswith("//") else path
        if not path:
            raise ValueError(f"address {text!r} names no socket path")
        return Address(path=path, tls=tls)
    host, sep, port_text = raw.rpartition(":")
    if not sep or "]" in port_text:
        if default_port is None:
            raise ValueError(f"address {text!r} has no port (expected host:port)")
        host, port_text = raw, str(default_port)
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {text!r} has a port that is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"address {text!r} has a port out of range")
    return Address(host=host, port=port, tls=tls)


async def listen(
    address: Address,
    factory: Callable[[], asyncio.Protocol],
    *,
    ssl: ssl_module.SSLContext | None = None,
    limits: Limits | None = None,
) -> tuple[asyncio.Server, Address]:
    """Listen on ``address``; returns the server and the address actually bound. Every
    :class:`Connection` ``factory`` makes is guarded by ``limits`` (default: the settings')."""
    loop = asyncio.get_running_loop()
    if limits is None:
        from micro.settings import load

        limits = Limits.of(load())
    guard = Guard(limits)

    def guarded() -> asyncio.Protocol:
        protocol = factory()
        if isinstance(protocol, Connection):
            protocol.guard = guard
        return protocol

    try:
        if address.is_unix:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address.path)
            server = await loop.create_unix_server(guarded, address.path, ssl=ssl)
            return server, Address(path=address.path, tls=ssl is not None)
        host = address.host or None
        server = await loop.create_server(guarded, host, address.port, ssl=ssl, reuse_address=True)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OSError(
                exc.errno, f"cannot listen on {address}: address already in use"
            ) from None
        raise OSError(exc.errno, f"cannot listen on {address}: {exc.strerror or exc}") from None
    sock_host, sock_port = server.sockets[0].getsockname()[:2]
    return server, Address(host=address.host or sock_host, port=sock_port, tls=ssl is not None)


async def connect(
    address: Address,
    factory: Callable[[], asyncio.Protocol],
    *,
    ssl: ssl_module.SSLContext | None = None,
    timeout: float = 5.0,
) -> asyncio.Protocol:
    """Connect to ``address``; failures are :class:`errors.ConnectionError` naming the address."""
    loop = asyncio.get_running_loop()
    if address.tls and ssl is None:
        ssl = ssl_module.create_default_context()
    try:
        async with asyncio.timeout(timeout):
            if address.is_unix:
                # A Unix socket has no host name to check a certificate against: a local
                # server's certificate names "localhost", so that stands in.
                _, protocol = await loop.create_unix_connection(
                    factory,
                    address.path,
                    ssl=ssl,
                    server_hostname="localhost" if ssl is not None else None,
                )
            else:
                server_hostname = address.host if ssl is not None else None
                _, protocol = await loop.create_connection(
                    factory,
                    address.host or "127.0.0.1",
                    address.port,
                    ssl=ssl,
                    server_hostname=server_hostname,
                )
    except TimeoutError:
        raise errors.ConnectionError("micro.wire", f"timed out connecting to {address}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise errors.ConnectionError(
            "micro.wire", f"cannot connect to {address}: {reason}"
        ) from None
    return protocol


def install_loop() -> None:
    """Make new event loops uvloop ones where uvloop is installed (it is 3-4x faster)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh (uvloop) event loop."""
    install_loop()
    return asyncio.run(main)
