"""``micro network services|nodes|routes``: what the current namespace can reach.

Answers come from the ``network`` service, about the CLI's namespace only::

    $ micro network routes --service helloworld
    SERVICE     ADDRESS          GATEWAY  ROUTER         NETWORK  METRIC  LINK
    helloworld  127.0.0.1:40123  n/a      network-r0     micro    1       local

Empty cells read ``n/a`` (as ``micro auth list accounts`` does), so every row splits into
the same columns; an empty answer prints nothing.
"""

from __future__ import annotations

import click

from micro.cli._client import Session, run_with_client
from micro.cli._format import table
from micro.cli.main import SubGroup

__all__ = ["network"]


@click.group("network", cls=SubGroup)
def network() -> None:
    """The network: services, nodes and routes of the current namespace."""


@network.command("services")
def services() -> None:
    """List the services of the namespace, sorted, one per line."""

    async def body(session: Session) -> list[str]:
        from micro.network.client import RPCNetwork

        return await RPCNetwork(session.client).services()

    names = run_with_client(body)
    if names:
        click.echo("\n".join(names))


@network.command("nodes")
def nodes() -> None:
    """List the nodes of the namespace's services: ID, address, metadata."""

    async def body(session: Session) -> list[tuple[str, ...]]:
        from micro.network.client import RPCNetwork

        found = await RPCNetwork(session.client).nodes()
        return [(n.id, n.address, _pairs(n.metadata)) for n in found]

    _print([("ID", "ADDRESS", "METADATA")], run_with_client(body))


@network.command("routes")
@click.option("--service", default="", help="Only routes to this service.")
@click.option("--address", default="", help="Only routes to this address.")
@click.option("--gateway", default="", help="Only routes through this gateway.")
@click.option("--router", default="", help="Only routes of this router.")
@click.option("--network", "network_name", default="", help="Only routes in this network.")
def routes(service: str, address: str, gateway: str, router: str, network_name: str) -> None:
    """List a route to each node of the namespace's services."""

    async def body(session: Session) -> list[tuple[str, ...]]:
        from micro.network.client import RPCNetwork
        from micro.network.proto import Query

        query = Query(service, address, gateway, router, network_name)
        return [
            (
                r.service,
                r.address,
                r.gateway or "n/a",
                r.router or "n/a",
                r.network or "n/a",
                str(r.metric),
                r.link or "n/a",
            )
            for r in await RPCNetwork(session.client).routes(query)
        ]

    header = ("SERVICE", "ADDRESS", "GATEWAY", "ROUTER", "NETWORK", "METRIC", "LINK")
    _print([header], run_with_client(body))


def _pairs(metadata: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(metadata.items())) or "n/a"


def _print(header: list[tuple[str, ...]], rows: list[tuple[str, ...]]) -> None:
    if rows:
        click.echo("\n".join(table(header + rows)))
