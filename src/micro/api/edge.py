"""The gateway as a listener: uvicorn (httptools, websockets) serving :class:`Gateway` on
the server's own event loop, at ``MICRO_API_ADDRESS`` (``off`` to not start it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import Any

from micro.api.app import Gateway
from micro.registry.routes import Routes
from micro.rpc.upstream import Upstream
from micro.settings import Settings
from micro.wire.transport import parse_address

__all__ = ["ApiEdge", "create"]

log = logging.getLogger("micro.api")


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server without its signal handling: ``micro server`` owns SIGTERM and
        SIGINT, and stops the gateway itself."""

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    return Server


def _bind(address: str) -> socket.socket:
    where = parse_address(address)
    if where.is_unix or where.tls:
        raise ValueError(f"the API gateway listens on host:port, not {address!r}")
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


class ApiEdge:
    """Serves the gateway until stopped."""

    def __init__(self, gateway: Gateway, address: str) -> None:
        self.gateway = gateway
        self._address = address
        self._server: object = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        import uvicorn

        _Server = _server_class()
        sock = _bind(self._address)
        config = uvicorn.Config(
            self.gateway,
            http="httptools",
            ws="websockets-sansio",
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
            log_config=None,
        )
        server = _Server(config)
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        log.info("Serving API on %s:%s", shown, port)
        return f"{shown}:{port}"

    async def stop(self) -> None:
        import uvicorn

        server = self._server
        if isinstance(server, uvicorn.Server) and self._task is not None:
            server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except TimeoutError:
                server.force_exit = True
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task


def create(settings: Settings, upstream: Upstream, routes: Routes) -> ApiEdge | None:
    """The gateway edge of ``micro server`` (``None`` when ``MICRO_API_ADDRESS=off``)."""
    if settings.api_address == "off":
        return None
    gateway = Gateway(
        upstream,
        routes,
        max_body=settings.api_max_body,
        cors_origins=settings.api_cors_origins,
    )
    return ApiEdge(gateway, settings.api_address)
