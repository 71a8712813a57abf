"""The proxy: forwards calls for services the server does not host to one of their nodes.

It reads only the request header (service, namespace) and relays bodies as bytes, so a
JSON body from the CLI reaches the service untouched. Unary calls are relayed as one
request and one response; streams are pumped both ways with flow control on each leg.
A node that refuses the connection is ejected and the call goes to another.

What a forwarded call carries is the door's business, not the caller's:

- **The platform's own services** (:data:`~micro.rpc.client.CORE_SERVICES`) are always the
  server's: a call to one from an edge (the gateway, the gRPC edge, the dashboard) goes to
  the server's own handlers over an in-process pipe, whatever its namespace, and such a
  name is never looked up in a registry a tenant can write to.
- **No credential reaches a service.** Once the door admitted a call, the caller's token
  is replaced by one bound to the service called (:mod:`micro.auth.bound`), which no other
  door takes; the service's own door tells it who the caller is.
- **No loops.** Each forward counts a hop (``micro-hops``); past :data:`MAX_HOPS` the call
  is refused with 508, and a node registered at the proxy's own address is never called.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Final

from micro import errors
from micro.auth.door import Door
from micro.registry.base import Registry, Result
from micro.rpc.client import CORE_SERVICES
from micro.rpc.selector import Selector
from micro.wire import frames
from micro.wire.connection import Connection, TaskEnd
from micro.wire.pipe import pipe
from micro.wire.pool import Pool
from micro.wire.stream import Stream
from micro.wire.transport import parse_address

if TYPE_CHECKING:
    from micro.auth.bound import BoundTokens
    from micro.rpc.server import Server
    from micro.runtime.restarting import Restarting

__all__ = ["MAX_HOPS", "Forwarder"]

log = logging.getLogger("micro.proxy")

MAX_HOPS: Final = 8
"""How many proxies one call may pass through: more means it goes round in a loop."""

_LOOP_DETECTED: Final = 508
_SELF_HOSTS: Final = frozenset({"", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"})


class Forwarder:
    """The server's fallback for calls to services it does not host, and the upstream its
    edges hand every call to. ``local`` is the server whose services the edges reach in
    process; ``bound`` mints the tokens forwarded calls carry."""

    def __init__(
        self,
        registry: Registry,
        *,
        door: Door | None = None,
        bound: BoundTokens | None = None,
        local: Server | None = None,
        retries: int = 2,
    ) -> None:
        self._registry = registry
        self._door = door
        self._bound = bound
        self._local = local
        self._pipe: Connection | None = None
        self._pool = Pool()
        self._selector = Selector(self._lookup, ttl=30.0)
        self._retries = retries
        self._self_ports: set[int] = set()
        self._self_addresses: set[str] = set()
        self._watch_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.restarting: Restarting | None = None
        """Set by the server when it runs a runtime: a service it runs that has no node
        is waited for, not "not found"."""

    async def start(self, *, listening: str = "") -> None:
        """Keep the route cache fresh from the registry's changes; ``listening`` is the
        proxy's own address, never forwarded to."""
        if listening:
            where = parse_address(listening)
            if where.is_unix:
                self._self_addresses.add(str(where))
            else:
                self._self_ports.add(where.port)
                self._self_addresses.add(where.host)
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
        nodes = [node.address for svc in found for node in svc.nodes]
        callable_ = [address for address in nodes if not self._is_self(address)]
        if nodes and not callable_:
            raise errors.ServiceUnavailable(
                "micro.proxy", f"service {service} is registered at the proxy's own address"
            )
        return callable_

    def _is_self(self, address: str) -> bool:
        """Whether ``address`` is this proxy's listener (calling it would loop)."""
        try:
            where = parse_address(address)
        except ValueError:
            return False
        if where.is_unix:
            return str(where) in self._self_addresses
        hosts = _SELF_HOSTS | self._self_addresses
        return where.port in self._self_ports and where.host in hosts

    async def stop(self) -> None:
        """Stop forwarding and close connections to nodes."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        for task in list(self._tasks):
            task.cancel()
        if self._pipe is not None:
            self._pipe.close()
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

    async def _connection(self, header: frames.RequestHeader) -> Connection:
        """Admit the call and pick where it goes: the server's own handlers (which admit
        it themselves) or a node of its service, with the caller's token replaced."""
        local = self._local
        if local is not None and local.hosts(header.service):
            if self._pipe is None or self._pipe.closed:
                self._pipe = pipe(local)
            return self._pipe
        if header.service in CORE_SERVICES:
            raise errors.NotFound("micro.proxy", f"service {header.service} not found")
        metadata = header.metadata
        hops = _hops(metadata)
        if hops >= MAX_HOPS:
            raise errors.new(
                "micro.proxy",
                f"call to {header.service} passed {hops} proxies: it is going round in a loop",
                _LOOP_DETECTED,
            )
        metadata["micro-hops"] = str(hops + 1)
        if self._door is not None:
            account = await self._door.admit(metadata, header.service, header.endpoint)
            credential = metadata.pop("authorization", "")
            if account is not None and self._bound is not None:
                verified = await self._door.verified(credential)
                namespace = metadata.get("micro-namespace") or "micro"
                token = self._bound.token(credential, verified, namespace, header.service)
                metadata["authorization"] = f"Bearer {token}"
        return await self._upstream(header)

    async def _upstream(self, header: frames.RequestHeader) -> Connection:
        namespace = header.metadata.get("micro-namespace") or "micro"
        tried: list[str] = []
        while True:
            try:
                address = await self._selector.select(header.service, namespace, exclude=tried)
            except (
                errors.NotFound
            ) as missing:  # restarting, not unknown? (micro.runtime.restarting)
                if self.restarting is None:
                    raise
                address = await self.restarting.wait(
                    header.service,
                    namespace,
                    header.timeout,
                    functools.partial(self._selector.select, header.service, namespace),
                    missing,
                )
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
        upstream = await self._connection(header)
        timeout = header.timeout / 1000 if header.timeout > 0 else None
        return await upstream.unary(header, body, timeout)

    async def open_stream(self, header: frames.RequestHeader, first: bytes | None) -> Stream:
        """Admit the call, then open it on a node of its service (``first``: the request of
        a server stream; ``None`` when the caller sends messages)."""
        upstream = await self._connection(header)
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


def _hops(metadata: dict[str, str]) -> int:
    raw = metadata.get("micro-hops", "")
    return int(raw) if raw.isdigit() and len(raw) < 4 else 0


async def _pump(src: Stream, dst: Stream) -> None:
    """Copy messages from ``src`` to ``dst`` until the end; errors travel on."""
    while True:
        try:
            data = await src.recv()
        except StopAsyncIteration:
            dst.end()
            return
        await dst.send(data)
