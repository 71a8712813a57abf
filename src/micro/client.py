"""Call other services by name, from a service, a script or a test::

    rsp = await micro.client.call("helloworld", "Helloworld.Call", {"name": "John"})

Inside a running :class:`micro.Service` these use that service's client (its namespace,
its middleware); elsewhere a client configured from the environment: ``MICRO_PROXY``, or
the current environment of ``micro env``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from micro.config.base import Watcher
from micro.envs import resolve_proxy
from micro.rpc.client import Client, ClientStream, Exchange
from micro.rpc.types import ClientMiddleware
from micro.settings import Settings, load

if TYPE_CHECKING:
    from micro.routing import Router

__all__ = ["Client", "ClientStream", "call", "default", "new_client", "set_default", "stream"]

_defaults: dict[asyncio.AbstractEventLoop, Client] = {}


def new_client(
    settings: Settings | None = None,
    *,
    via_proxy: bool = False,
    namespace: str | None = None,
    middleware: Sequence[ClientMiddleware] = (),
    proxy: str | None = None,
    identity: bool = True,
    service: str | None = None,
) -> Client:
    """A client for this environment: core services through the proxy, other services
    direct to their nodes (or everything through the proxy with ``via_proxy``).

    With ``identity`` its calls carry who is calling: the service's own account
    (``MICRO_AUTH_ID``/``MICRO_AUTH_SECRET``), else the developer's ``micro login`` of this
    environment (so a service started by hand needs no extra step), else nobody. That
    account's token goes to the proxy only; a call straight to a node carries one bound to
    its service instead (:mod:`micro.auth.exchange`).

    Its calls are traced (:class:`~micro.trace.ClientTracing`, the outermost middleware),
    as made by ``service`` (default ``MICRO_SERVICE_NAME``).
    """
    from micro.trace.middleware import ClientTracing

    settings = settings or load()
    if proxy is None:
        _, proxy = resolve_proxy(settings)
    ns = namespace or settings.namespace or "micro"
    holder: list[Client] = []
    chain = list(middleware)
    if identity:
        who = _identity(settings, ns, holder)
        if who is not None:
            chain.insert(0, who)
    chain.insert(0, ClientTracing(service or settings.service_name or ""))
    client = Client(
        proxy=proxy,
        via_proxy=via_proxy,
        middleware=chain,
        metadata={"micro-namespace": ns},
        exchange=_exchange(holder),
    )
    holder.append(client)
    if not via_proxy:
        client.router = _router(client, ns)
    return client


def _router(client: Client, namespace: str) -> Router:
    """The client's router: its namespace's registry, watched once, and the
    ``resilience`` policies of the namespaces it calls in (both through the proxy)."""
    from micro.config.client import RPCConfig
    from micro.registry.client import RPCRegistry
    from micro.routing import Policies, Router, RouteTable
    from micro.routing.policy import ROOT

    def policies(ns: str) -> Watcher:
        return RPCConfig(client).watch(ROOT, namespace=ns)

    table = RouteTable(RPCRegistry(client), domain=namespace)
    return Router(table, policies=Policies(policies), pool=client.pool)


def _exchange(holder: list[Client]) -> Exchange:
    """Tokens for the nodes a client calls directly, from the ``auth`` service."""
    from micro.auth.client import RPCAuth
    from micro.auth.exchange import TokenExchange

    return TokenExchange(lambda: RPCAuth(holder[0]))


def _identity(settings: Settings, namespace: str, holder: list[Client]) -> ClientMiddleware | None:
    from micro.auth.client import RPCAuth

    def auth() -> RPCAuth:
        return RPCAuth(holder[0])

    if settings.auth_id and settings.auth_secret:
        from micro.auth.account_login import AccountLogin

        return AccountLogin(settings.auth_id, settings.auth_secret, namespace=namespace).middleware(
            auth
        )
    from micro.auth.credentials import developer_middleware

    return developer_middleware(settings, auth)


def default() -> Client:
    """The client of the running service, or one made from the environment."""
    loop = asyncio.get_running_loop()
    client = _defaults.get(loop)
    if client is None:
        for stale in [lp for lp in _defaults if lp.is_closed()]:
            del _defaults[stale]
        client = _defaults[loop] = new_client()
    return client


def set_default(client: Client) -> None:
    """Make ``client`` what :func:`call` and :func:`stream` use on this event loop."""
    _defaults[asyncio.get_running_loop()] = client


async def call(service: str, endpoint: str, request: Any = None, **options: Any) -> Any:
    """Call an endpoint; see :meth:`micro.rpc.client.Client.call` for the options."""
    return await default().call(service, endpoint, request, **options)


async def stream(service: str, endpoint: str, *args: Any, **options: Any) -> ClientStream[Any]:
    """Open a streaming call; see :meth:`micro.rpc.client.Client.stream`."""
    return await default().stream(service, endpoint, *args, **options)
