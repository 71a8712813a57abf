"""``micro.Service``: a named, versioned service that serves handlers and registers itself.

Lifecycle (:meth:`Service.run` does all of it): listen on a free port, register with
endpoint schemas and a TTL, re-register on a timer (so a restarted registry recovers and
a dead node expires), serve until SIGTERM/SIGINT, then deregister and drain in-flight
calls before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from micro import client as client_module
from micro import errors
from micro._gc import settle
from micro.debug import Debug
from micro.log import configure
from micro.metrics.process import default as default_metrics
from micro.registry.base import Endpoint as RegistryEndpoint
from micro.registry.base import Node, Registry
from micro.registry.base import Service as ServiceRecord
from micro.rpc.client import Client
from micro.rpc.endpoint import Endpoint, endpoints_of
from micro.rpc.server import Server
from micro.rpc.types import ClientMiddleware, ServerMiddleware
from micro.settings import Settings, load

if TYPE_CHECKING:
    from micro.auth.remote import RemoteDoor
from micro.wire.transport import Address, run

__all__ = ["Service", "describe_endpoints"]

Handler = Callable[[Any], Awaitable[None]]
"""A subscriber or consumer function: ``async def handle(payload: T) -> None``."""

log = logging.getLogger("micro.service")


def _developer_namespace(settings: Settings) -> str:
    """A service started by hand lives where its developer works: the namespace of the
    CLI login it acts as (``micro`` when there is none)."""
    from micro.auth.credentials import developer_credentials

    credentials = developer_credentials(settings)
    return credentials.namespace if credentials is not None else "micro"


def describe_endpoints(endpoints: list[Endpoint]) -> list[RegistryEndpoint]:
    """Endpoints as the registry publishes them: name, request/response JSON Schemas, metadata."""
    return [
        RegistryEndpoint(
            name=ep.name,
            request=ep.request_schema(),
            response=ep.response_schema(),
            metadata=ep.metadata,
        )
        for ep in endpoints
    ]


class Service:
    """A service: give it handlers, then :meth:`run` it."""

    def __init__(
        self,
        name: str | None = None,
        *,
        version: str | None = None,
        address: str | None = None,
        metadata: dict[str, str] | None = None,
        middleware: Sequence[ServerMiddleware] = (),
        client_middleware: Sequence[ClientMiddleware] = (),
        settings: Settings | None = None,
        registry: Registry | None = None,
        client: Client | None = None,
    ) -> None:
        self.settings = settings or load()
        # The runtime's variables win over the code's defaults, so `micro run --name` works.
        resolved = self.settings.service_name or name
        if not resolved:
            raise ValueError("a service needs a name: Service('name') or MICRO_SERVICE_NAME")
        self.name = resolved
        self.version = self.settings.service_version or version or "latest"
        self.namespace = self.settings.namespace or _developer_namespace(self.settings)
        self.metadata = dict(metadata or {})
        self.node_id = self.settings.service_id or f"{self.name}-{uuid.uuid4()}"
        self._listen = address or self.settings.service_address
        from micro.trace.middleware import ServerTracing

        # Metrics and tracing observe every call (the middleware's answers, refusals
        # included): a span covers the handler and the middleware.
        self.metrics = default_metrics()
        self._server = Server(
            middleware=middleware, observers=[self.metrics, ServerTracing(self.name)]
        )
        self._client = client
        self._client_middleware = client_middleware
        self._registry = registry
        self._endpoints: list[Endpoint] = []
        self._address: Address | None = None
        self._register_task: asyncio.Task[None] | None = None
        self._stopped: asyncio.Event | None = None
        self._registered = False
        self._door: RemoteDoor | None = None
        self._consumers: list[Any] = []
        self._subscribers: list[Any] = []
        self._background: list[asyncio.Task[None]] = []
        self._server.add_internal(
            endpoints_of(Debug(self._server.stats, self.metrics, namespace=self.namespace))
        )

    # -- building -------------------------------------------------------------------------

    def handle(self, handler: object, *, name: str | None = None) -> None:
        """Serve every public async method of ``handler`` as ``<Name>.<Method>``."""
        eps = endpoints_of(handler, name=name)
        self._server.add(self.name, eps)
        self._endpoints.extend(eps)

    def subscribe(self, topic: str, *, queue: str | None = None) -> Callable[[Handler], Handler]:
        """Decorate ``async def handle(msg: T)`` to receive ``topic``'s broker messages while
        the service runs (with ``queue``, shared among the queue group's members)."""
        from micro.broker.subscriber import subscriber

        return subscriber(topic, queue=queue, into=self._subscribers)

    def consume(
        self,
        topic: str,
        *,
        group: str,
        offset: int | datetime.datetime | None = None,
        ack_wait: float = 30.0,
        retry_limit: int | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorate ``async def handle(evt: T)`` to consume ``topic`` as ``group`` while the
        service runs: the payload is decoded into ``T``; returning acks, raising nacks."""
        from micro.events.consumer import consumer

        def register(fn: Handler) -> Handler:
            spec = consumer(
                topic, group=group, offset=offset, ack_wait=ack_wait, retry_limit=retry_limit
            )(fn)
            self._consumers.append(spec)
            return fn

        return register

    # -- parts ----------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The client this service calls others with (made on first use)."""
        if self._client is None:
            self._client = client_module.new_client(
                self.settings,
                namespace=self.namespace,
                middleware=self._client_middleware,
                service=self.name,
            )
        return self._client

    @property
    def registry(self) -> Registry:
        """Where this service registers (the ``registry`` service unless given)."""
        if self._registry is None:
            from micro.registry.client import RPCRegistry

            self._registry = RPCRegistry(self.client)
        return self._registry

    @property
    def address(self) -> str:
        """The address other nodes reach this service at (after :meth:`start`)."""
        if self._address is None:
            raise RuntimeError("the service is not started")
        host = self.settings.service_advertise
        if host:
            return host
        bound = self._address
        if bound.is_unix:
            return str(bound)
        shown = bound.host if bound.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return f"{shown}:{bound.port}"

    def record(self) -> ServiceRecord:
        """This service as the registry stores it."""
        return ServiceRecord(
            name=self.name,
            version=self.version,
            metadata=self.metadata,
            endpoints=describe_endpoints(self._endpoints),
            nodes=[Node(id=self.node_id, address=self.address, metadata={"protocol": "micro"})],
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, register, and keep the registration fresh."""
        from micro.auth.remote import RemoteDoor

        # Every call is admitted by the rules of this service's namespace (as in Micro).
        self._door = RemoteDoor(self.client, namespace=self.namespace, service=self.name)
        self._server.door = self._door.door
        self._door.start()
        self._address = await self._server.start(self._listen)
        self._server.fallback = None
        client_module.set_default(self.client)
        from micro.trace.export import rpc_sink, setup

        setup(self.settings, service=self.name, owner=self, sink=rpc_sink(self.client))
        from micro.store.client import RPCStore
        from micro.store.default import set_default as set_default_store

        set_default_store(RPCStore(self.client), database=self.namespace, table=self.name)
        import micro.config

        await micro.config.attach(self.client, namespace=self.namespace)
        import micro.broker
        from micro.broker.client import RPCBroker

        broker = RPCBroker(self.client)
        micro.broker.set_default(broker, namespace=self.namespace)
        if self._subscribers:
            self._background += await micro.broker.run_subscribers(
                broker, self._subscribers, self.namespace, service=self.name
            )
        import micro.events
        from micro.events.client import RPCStream

        events = RPCStream(self.client)
        micro.events.set_default(events, namespace=self.namespace)
        if self._consumers:
            self._background += await micro.events.run_consumers(
                events, self._consumers, self.namespace, service=self.name
            )
        log.info("Starting [service] %s on %s", self.name, self.address)
        await self._register(first=True)
        self._register_task = asyncio.get_running_loop().create_task(self._keep_registered())
        if self.settings.runtime_parent:
            self._background.append(asyncio.get_running_loop().create_task(self._follow_parent()))

    async def _register(self, *, first: bool = False) -> bool:
        try:
            await self.registry.register(
                self.record(), ttl=self.settings.register_ttl, domain=self.namespace
            )
        except errors.MicroError as exc:
            level = logging.WARNING if first else logging.ERROR
            log.log(level, "cannot register %s: %s (will retry)", self.name, exc.detail)
            return False
        if not self._registered:
            self._registered = True
            log.info("Registered [service] %s node %s", self.name, self.node_id)
        return True

    async def _keep_registered(self) -> None:
        interval = self.settings.register_interval
        retry = min(1.0, interval)
        ok = True
        while True:
            await asyncio.sleep(interval if ok else retry)
            ok = await self._register()
            retry = min(retry * 2, interval)

    async def _follow_parent(self) -> None:
        """Run by the runtime: stop when the server that started this process is gone
        (killed), rather than live on as an orphan nobody supervises."""
        while os.getppid() == self.settings.runtime_parent:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(1.0)
        log.warning("the micro server that ran %s is gone: stopping", self.name)
        self.shutdown()

    async def stop(self, grace: float = 10.0) -> None:
        """Deregister, drain in-flight calls for up to ``grace`` seconds, close."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self._register_task is not None:
            self._register_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._register_task
            self._register_task = None
        if self._address is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self.registry.deregister(self.record(), domain=self.namespace)
            except (errors.MicroError, TimeoutError) as exc:
                log.warning("cannot deregister %s: %s", self.name, exc)
            if self.settings.drain_delay > 0:  # proxies forget this node before it refuses calls
                await asyncio.sleep(self.settings.drain_delay)
        await self._server.stop(grace)
        from micro.trace.export import teardown

        await teardown(self)
        if self._door is not None:
            await self._door.stop()
        import micro.config

        await micro.config.detach()
        if self._client is not None:
            await self._client.close()
        log.info("Stopped [service] %s", self.name)

    async def serve(self) -> None:
        """Start, serve until SIGTERM or SIGINT (or :meth:`shutdown`), then stop."""
        self._stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stopped.set)
        await self.start()
        settle()  # what start built stays for good: out of the collector's way
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    def shutdown(self) -> None:
        """Ask a serving service to stop (what SIGTERM does)."""
        if self._stopped is not None:
            self._stopped.set()

    def run(self) -> None:
        """Serve until told to stop: the usual last line of a service's ``main.py``."""
        configure(self.settings.log_level, self.settings.log_format, service=self.name)
        with contextlib.suppress(KeyboardInterrupt):
            run(self.serve())
