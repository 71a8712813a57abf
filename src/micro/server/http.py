"""Serving an ASGI app (the gateway, the dashboard) with uvicorn on the server's own event
loop, on a socket we bind ourselves so that port 0 works and the bound port is known.

uvicorn's httptools protocol puts no bound on a client: it waits for headers forever
(slowloris) and reads headers of any size. :class:`HttpLimits` adds them, in a subclass of
that protocol (:mod:`micro.server.http_guard`): a request's line and headers must arrive
within ``header_timeout`` (408) and fit in ``max_header`` bytes (431, with Micro's error
JSON), a kept-alive connection may idle ``idle_timeout``, and a listener serves at most
``max_connections`` connections at once (503 beyond)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import Any

from micro.server.http_guard import HttpLimits, guarded_protocol
from micro.settings import load
from micro.wire.transport import parse_address

__all__ = ["HttpLimits", "HttpListener"]

log = logging.getLogger("micro.server")


def _bind(address: str) -> socket.socket:
    where = parse_address(address)
    if where.is_unix or where.tls:
        raise ValueError(f"HTTP listeners take host:port, not {address!r}")
    host = where.host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, where.port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"Cannot listen on {address}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server without its signal handling: ``micro server`` owns SIGTERM and
        SIGINT, and stops its listeners itself."""

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    return Server


class HttpListener:
    """One ASGI app on one address (httptools, websockets, no access log), within
    ``limits`` (default: the settings')."""

    def __init__(
        self, app: Any, address: str, *, name: str, limits: HttpLimits | None = None
    ) -> None:
        self.app = app
        self.name = name
        self.limits = limits or HttpLimits.of(load())
        self._address = address
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Listen; the address it is reached at."""
        import uvicorn

        sock = _bind(self._address)
        config = uvicorn.Config(
            self.app,
            http=guarded_protocol(self.limits),
            timeout_keep_alive=self.limits.idle_timeout,  # type: ignore[arg-type]  # (a float)
            ws="websockets-sansio",
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
            log_config=None,
        )
        server = _server_class()(config)
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        log.info("Serving %s on %s:%s", self.name, shown, port)
        return f"{shown}:{port}"

    async def stop(self) -> None:
        """Stop; requests in flight get a few seconds."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        except TimeoutError:
            self._server.force_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
