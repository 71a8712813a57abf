"""``micro server``: the whole platform in one process, and ``micro service <block>``: one block.

The core services are hosted in-process on the proxy's listener, so a call to the
registry costs no extra hop; a call to any other service is forwarded to one of its
nodes by :class:`~micro.server.proxy.Forwarder`. Core services register in the registry
(domain ``micro``) at the proxy's address, so ``micro services`` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from micro import errors
from micro._gc import settle
from micro.auth.remote import RemoteDoor
from micro.client import new_client
from micro.debug import Debug
from micro.metrics.process import default as default_metrics
from micro.registry.base import Node, Registry, Service
from micro.routing import Policies, Router, RouteTable
from micro.routing.policy import ROOT
from micro.rpc.client import Client
from micro.rpc.endpoint import Endpoint, endpoints_of
from micro.rpc.server import Server
from micro.server.blocks import BLOCKS, build
from micro.server.edges import EDGES, Edge
from micro.server.edges import create as create_edge
from micro.server.gate import Gate
from micro.server.proxy import Forwarder
from micro.service import describe_endpoints
from micro.settings import Settings, server_ssl
from micro.trace.export import local_sink
from micro.trace.export import setup as trace_setup
from micro.trace.export import teardown as trace_teardown
from micro.wire.transport import Address

__all__ = ["MicroServer", "run_server", "secure_home", "serve_block"]

log = logging.getLogger("micro.server")


def _host(
    rpc: Server, names: list[str], built: dict[str, Any], settings: Settings
) -> dict[str, list[Endpoint]]:
    """Serve each block's handlers under the block's name; returns the endpoints hosted."""
    hosted: dict[str, list[Endpoint]] = {}
    for name in names:
        handlers = BLOCKS[name].handlers(built[name], settings)
        eps = [ep for handler in handlers for ep in endpoints_of(handler)]
        rpc.add(name, eps)
        hosted[name] = eps
    # The server's own metrics (the core services') are for platform admins only.
    rpc.add_internal(endpoints_of(Debug(rpc.stats, default_metrics(), admins_only=True)))
    return hosted


class MicroServer:
    """The platform: core blocks plus the proxy, on one listener."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rpc = Server(ssl=server_ssl(settings), front_door=True, observers=[default_metrics()])
        self.backends: dict[str, Any] = {}
        self.forwarder: Forwarder | None = None
        self.gate: Gate | None = None
        self.address = ""
        self.edges: dict[str, Edge] = {}
        self.routes: RouteTable | None = None
        self._core: list[Service] = []
        self._refresh: asyncio.Task[None] | None = None
        self.edge_addresses: dict[str, str] = {}
        """Where each edge listens (``api``, ``grpc``), after :meth:`start`."""

    @property
    def registry(self) -> Registry:
        """The registry backend (after :meth:`start`)."""
        registry: Registry = self.backends["registry"]
        return registry

    async def start(self) -> None:
        """Build the blocks, listen, register the core services."""
        secure_home(self.settings.home)
        names = list(BLOCKS)
        self.backends = build(names, self.settings)
        hosted = _host(self.rpc, names, self.backends, self.settings)
        # The edges' and the proxy's spans go straight into the server's trace store.
        trace_setup(
            self.settings, service="micro", owner=self, sink=local_sink(self.backends["trace"])
        )
        self.gate = Gate(self.backends["auth"])
        self.rpc.door = self.gate.door
        # One table of routes for the whole process (proxy and edges), one registry watch.
        self.routes = RouteTable(self.registry)
        config = self.backends["config"]
        policies = Policies(lambda namespace: config.watch(ROOT, namespace=namespace))
        self.forwarder = Forwarder(
            Router(self.routes, policies=policies, who="micro.proxy"),
            door=self.gate.door,
            bound=self.gate.bound,
            local=self.rpc,
        )
        self.rpc.fallback = self.forwarder
        bound = await self.rpc.start(self.settings.proxy_address)
        self.address = _advertised(bound)
        await self.forwarder.start(listening=self.address)
        await self.gate.start(self.settings, [self.settings.proxy_address])
        for name in EDGES:
            edge = create_edge(name, self.settings, self.forwarder, self.routes)
            if edge is not None:
                self.edge_addresses[name] = await edge.start()
                self.edges[name] = edge
        runtime = self.backends["runtime"]
        await runtime.attach(self.address)
        if hasattr(runtime, "expecting"):  # calls to a restarting service wait for it
            from micro.runtime.restarting import Restarting

            self.routes.restarting = Restarting(runtime.expecting)
        self._core = [
            Service(
                name=name,
                version="latest",
                nodes=[Node(id=f"{name}-{self.settings.replica}", address=self.address)],
                endpoints=describe_endpoints(eps),
            )
            for name, eps in hosted.items()
        ]
        await self._register_core()
        self._refresh = asyncio.get_running_loop().create_task(self._keep_core_registered())
        self._write_state()
        log.info("Serving proxy on %s", self.address)

    async def _register_core(self) -> None:
        """Register the core services at this server's address, with the replica TTL: on a
        shared registry (etcd) a server that dies leaves no stale nodes behind, and the
        other replicas learn of its death (and adopt its services) within that TTL."""
        for service in self._core:
            await self.registry.register(service, ttl=self.settings.replica_ttl, domain="micro")

    async def _keep_core_registered(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replica_ttl / 3)
            try:
                await self._register_core()
            except errors.MicroError as exc:
                log.warning("cannot refresh the core services' registration: %s", exc.detail)

    def _write_state(self) -> None:
        folder = self.settings.home / "server"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = {"pid": os.getpid(), "proxy": self.address}
        (folder / "server.json").write_text(json.dumps(state))

    async def stop(self) -> None:
        """Stop the services the runtime runs (while they can still deregister), then
        forwarding and serving; in-flight calls get a short grace period."""
        runtime = self.backends.get("runtime")
        if runtime is not None:
            await runtime.close()
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
            for service in self._core:
                with contextlib.suppress(errors.MicroError):
                    await self.registry.deregister(service, domain="micro")
        for edge in self.edges.values():
            await edge.stop()
        if self.forwarder is not None:
            await self.forwarder.stop()
        if self.gate is not None:
            await self.gate.stop()
        await self.rpc.stop(grace=5.0)
        await trace_teardown(self)
        await _close(self.backends)
        with contextlib.suppress(FileNotFoundError):
            (self.settings.home / "server" / "server.json").unlink()


def secure_home(home: Path) -> None:
    """``MICRO_HOME`` and its ``server`` folder hold the server's keys and databases: both
    must be this process's user's and closed to everyone else (0700, tightened if
    looser). ValueError for one that belongs to another user, who could read them."""
    for folder in (home, home / "server"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = folder.stat()
        if found.st_uid != os.geteuid():
            raise ValueError(
                f"{folder} belongs to uid {found.st_uid}, not to this server's user (uid "
                f"{os.geteuid()}), who could read the server's keys: use another MICRO_HOME "
                "or chown it"
            )
        if stat.S_IMODE(found.st_mode) & 0o077:
            folder.chmod(0o700)


async def _close(backends: dict[str, Any]) -> None:
    for backend in reversed(list(backends.values())):
        await backend.close()


def _advertised(bound: Address) -> str:
    """The address clients can dial: a wildcard host is reached at 127.0.0.1."""
    if bound.host in ("", "0.0.0.0", "::"):
        bound = Address(host="127.0.0.1", port=bound.port, path=bound.path, tls=bound.tls)
    return str(bound)


async def _serve_until_signal(
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    ready_line: Callable[[], str],
) -> None:
    """Start, print the ready line (what scripts and the test fixture wait for), serve
    until SIGTERM or SIGINT, stop."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await start()
    settle()  # what start built stays for good: out of the collector's way
    try:
        print(ready_line(), flush=True)
        await stopped.wait()
    finally:
        await stop()


async def run_server(settings: Settings) -> None:
    """Run ``micro server`` until SIGTERM or SIGINT."""
    server = MicroServer(settings)

    def ready() -> str:
        edges = "".join(f" {name} {address}" for name, address in server.edge_addresses.items())
        return f"micro server ready: proxy {server.address}{edges}"

    await _serve_until_signal(server.start, server.stop, ready)


async def serve_block(block: str, settings: Settings, address: str) -> None:
    """Run one block alone as its own service (``micro service <block>``).

    Its calls are admitted like the server's: by the auth block's own keys and rules when
    the block is ``auth``, else by a door fed by the platform's ``auth`` service (reached
    through ``MICRO_PROXY`` as this process's account).
    """
    if block in EDGES:
        await serve_edge(block, settings, address)
        return
    if block in BLOCKS and not BLOCKS[block].alone:
        raise ValueError(f"the {block} block runs only inside micro server")
    backends = build([block], settings)
    rpc = Server(ssl=server_ssl(settings))
    _host(rpc, [block], backends, settings)
    bound: list[str] = []
    gate: Gate | None = None
    remote: RemoteDoor | None = None
    client: Client | None = None
    if "auth" in backends:
        gate = Gate(backends["auth"])
        rpc.door = gate.door
    else:
        client = new_client(settings, via_proxy=True)
        remote = RemoteDoor(client, namespace=None)
        rpc.door = remote.door

    async def start() -> None:
        bound.append(_advertised(await rpc.start(address)))
        if gate is not None:
            await gate.start(settings, [address])
        if remote is not None:
            remote.start()

    async def stop() -> None:
        if gate is not None:
            await gate.stop()
        if remote is not None:
            await remote.stop()
        await rpc.stop(grace=5.0)
        await _close(backends)
        if client is not None:
            await client.close()

    await _serve_until_signal(start, stop, lambda: f"micro service {block} ready: {bound[0]}")


async def serve_edge(name: str, settings: Settings, address: str) -> None:
    """Run an edge alone (``micro service api``): calls go through the platform's proxy
    (``MICRO_PROXY``), which admits them; routes come from its registry."""
    from dataclasses import replace

    from micro.envs import resolve_proxy
    from micro.registry.client import RPCRegistry
    from micro.rpc.upstream import ProxyUpstream
    from micro.trace.export import rpc_sink

    _, proxy = resolve_proxy(settings)
    if not proxy:
        raise ValueError("no proxy to send calls to: set MICRO_PROXY")
    client = new_client(settings, via_proxy=True)
    upstream = ProxyUpstream(proxy)
    wanted = {
        "api": lambda: replace(settings, api_address=address),
        "grpc": lambda: replace(settings, grpc_address=address),
        "web": lambda: replace(settings, web_address=address),
    }[name]()
    routes = RouteTable(RPCRegistry(client))
    edge = create_edge(name, wanted, upstream, routes)
    if edge is None:
        raise ValueError(f"the {name} edge is off or not installed")
    bound: list[str] = []

    owner = object()

    async def start() -> None:
        routes.start()
        trace_setup(settings, service=name, owner=owner, sink=rpc_sink(client))
        bound.append(await edge.start())

    async def stop() -> None:
        await edge.stop()
        await trace_teardown(owner)
        await routes.stop()
        await upstream.close()
        await client.close()

    await _serve_until_signal(start, stop, lambda: f"micro service {name} ready: {bound[0]}")
