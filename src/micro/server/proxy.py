"""The proxy: forwards calls for services the server does not host to one of their nodes.

It reads only the request header (service, namespace) and relays bodies as bytes, so a
JSON body from the CLI reaches the service untouched. Unary calls are relayed as one
request and one response; streams are pumped both ways with flow control on each leg.
A node that refuses the connection is ejected and the call goes to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from micro import errors
from micro.auth.door import Door
from micro.registry.base import Registry, Result
from micro.rpc.selector import Selector
from micro.wire import frames
from micro.wire.connection import Connection, TaskEnd
from micro.wire.pool import Pool
from micro.wire.stream import Stream

__all__ = ["Forwarder"]

log = logging.getLogger("micro.proxy")


class Forwarder:
    """The server's fallback for calls to services it does not host."""

    def __init__(self, registry: Registry, *, door: Door | None = None, retries: int = 2) -> None:
        self._registry = registry
        self._door = door
        self._pool = Pool()
        self._selector = Selector(self._lookup, ttl=30.0)
        self._retries = retries
        self._watch_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Keep the route cache fresh from the registry's changes."""
        self._watch_task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        watcher = self._registry.watch(domain="*")
        try:
            async for result in watcher:
                self._changed(result)
        finally:
            await watcher.stop()

    def _changed(self, result: Result) -> None:
        self._selector.invalidate(result.service.name)

    async def _lookup(self, service: str, namespace: str) -> list[str]:
        try:
            found = await self._registry.get_service(service, domain=namespace)
        except errors.NotFound:
            raise errors.NotFound("micro.proxy", f"service {service} not found") from None
        return [node.address for svc in found for node in svc.nodes]

    async def stop(self) -> None:
        """Stop forwarding and close connections to nodes."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        for task in list(self._tasks):
            task.cancel()
        await self._pool.close()

    # -- forwarding -----------------------------------------------------------------------

    def __call__(
        self,
        conn: Connection,
        stream_id: int,
        flags: int,
        header: frames.RequestHeader,
        body: bytes,
    ) -> None:
        loop = conn.loop
        if flags & frames.STREAMING:
            down = Stream(conn, stream_id)
            conn.streams[stream_id] = down
            if flags & frames.END_STREAM:
                down.recv_ended()
            task = loop.create_task(self._forward_stream(down, header, body, flags))
            down.on_cancel = task.cancel
        else:
            pending = TaskEnd()
            conn.streams[stream_id] = pending
            task = pending.task = loop.create_task(
                self._forward_unary(conn, stream_id, pending, header, body)
            )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _upstream(self, header: frames.RequestHeader) -> Connection:
        namespace = header.metadata.get("micro-namespace") or "micro"
        tried: list[str] = []
        while True:
            address = await self._selector.select(header.service, namespace, exclude=tried)
            conn = self._pool.get_nowait(address)
            if conn is not None:
                return conn
            try:
                return await self._pool.get(address)
            except errors.ConnectionError:
                self._selector.eject(address)
                tried.append(address)
                if len(tried) > self._retries:
                    raise

    # -- the Upstream interface (what the gateway and the gRPC edge call) ------------------

    async def unary(self, header: frames.RequestHeader, body: bytes) -> bytes:
        """Admit the call, then make it on a node of its service; the response body."""
        if self._door is not None:
            await self._door.admit(header.metadata, header.service, header.endpoint)
        upstream = await self._upstream(header)
        timeout = header.timeout / 1000 if header.timeout > 0 else None
        return await upstream.unary(header, body, timeout)

    async def open_stream(self, header: frames.RequestHeader, first: bytes | None) -> Stream:
        """Admit the call, then open it on a node of its service (``first``: the request of
        a server stream; ``None`` when the caller sends messages)."""
        if self._door is not None:
            await self._door.admit(header.metadata, header.service, header.endpoint)
        upstream = await self._upstream(header)
        return upstream.open_stream(header, first)

    async def _forward_unary(
        self,
        conn: Connection,
        stream_id: int,
        pending: TaskEnd,
        header: frames.RequestHeader,
        body: bytes,
    ) -> None:
        try:
            data = await self.unary(header, body)
            conn.send(frames.encode_frame(stream_id, frames.RESPONSE, 0, data))
        except errors.MicroError as exc:
            conn.send(frames.encode_frame(stream_id, frames.ERROR, 0, exc.to_json()))
        except asyncio.CancelledError:
            pass
        finally:
            conn.forget(stream_id, pending)

    async def _forward_stream(
        self, down: Stream, header: frames.RequestHeader, body: bytes, flags: int
    ) -> None:
        up: Stream | None = None
        pump: asyncio.Task[None] | None = None
        try:
            first = None if flags & frames.NO_BODY else body
            up = await self.open_stream(header, first)
            if first is None:
                pump = asyncio.get_running_loop().create_task(_pump(down, up))
            await _pump(up, down)
        except errors.MicroError as exc:
            if not down.finished:
                down.fail(exc)
        except asyncio.CancelledError:
            if up is not None:
                up.cancel()
        finally:
            if pump is not None:
                pump.cancel()
            down.conn.forget(down.id, down)


async def _pump(src: Stream, dst: Stream) -> None:
    """Copy messages from ``src`` to ``dst`` until the end; errors travel on."""
    while True:
        try:
            data = await src.recv()
        except StopAsyncIteration:
            dst.end()
            return
        await dst.send(data)
