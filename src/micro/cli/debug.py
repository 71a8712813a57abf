"""``micro debug health <service>``: ask every node of a service whether it is well.

Prints Micro's format and exits 1 when any node is not ``ok``::

    service  helloworld

    version latest

    node		address:port		status
    helloworld-1f2e…		127.0.0.1:40123		ok
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from micro.cli._client import Session, run_with_client
from micro.cli.main import SubGroup

if TYPE_CHECKING:
    from micro.registry.base import Node, Service

__all__ = ["debug", "health"]

_TIMEOUT = 5.0


@click.group("debug", cls=SubGroup)
def debug() -> None:
    """Debug a service: health of its nodes."""


@debug.command("health")
@click.argument("service")
def health(service: str) -> None:
    """Ask every node of a service for its health.

    Calls Debug.Health on each node; exits 1 unless every node answers ok.
    """

    async def body(session: Session) -> tuple[list[Service], list[list[str]]]:
        from micro.cli.registry import lookup

        found = await lookup(session, service)
        single = sum(len(svc.nodes) for svc in found) == 1
        statuses = await asyncio.gather(
            *(
                asyncio.gather(*(_health(session, svc.name, n, single) for n in svc.nodes))
                for svc in found
            )
        )
        return found, [list(s) for s in statuses]

    found, statuses = run_with_client(body)
    lines = [f"service  {found[0].name}"]
    for svc, status in zip(found, statuses, strict=True):
        lines += ["", f"version {svc.version}", "", "node\t\taddress:port\t\tstatus"]
        lines += [f"{n.id}\t\t{n.address}\t\t{s}" for n, s in zip(svc.nodes, status, strict=True)]
    click.echo("\n".join(lines))
    if any(s != "ok" for status in statuses for s in status):
        raise click.exceptions.Exit(1)


async def _health(session: Session, service: str, node: Node, single: bool) -> str:
    """The node's status, or what went wrong asking it.

    The node is called at its address. When that address cannot be reached from here
    (a remote environment) and it is the service's only node, the call goes through
    the proxy instead, which reaches it.
    """
    from micro import errors

    try:
        rsp = await session.client.call(
            service, "Debug.Health", {}, address=node.address, timeout=_TIMEOUT
        )
    except errors.ConnectionError as exc:
        if not single:
            return exc.detail or exc.status
        try:
            rsp = await session.client.call(service, "Debug.Health", {}, timeout=_TIMEOUT)
        except errors.MicroError as again:
            return again.detail or again.status
    except errors.MicroError as exc:
        return exc.detail or exc.status
    status = rsp.get("status") if isinstance(rsp, dict) else None
    return str(status) if status else f"unexpected answer: {rsp!r}"
