"""``micro gen client``: a typed async client of a service, from the registry or from the
service's own handler module.

::

    $ micro gen client helloworld -o helloworld_client.py
    $ micro gen client orders --from ../orders/handler.py -o orders_client.py

The module holds ``msgspec.Struct`` classes for every request and response and a
``HelloworldClient`` with one method per endpoint (streams as async iterators); it passes
``mypy --strict``. From the registry, the current namespace's service is read (its only
version, else ``latest``, or ``--version``); with ``--from``, nothing needs to run: the handler classes of
the file (``file.py:Class`` for one) are described as the service would register them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from micro.cli._client import Session, run_with_client
from micro.cli.errors import CliError
from micro.cli.main import MicroCommand, SubGroup

if TYPE_CHECKING:
    from micro.registry.base import Service

__all__ = ["gen"]


@click.group("gen", cls=SubGroup)
def gen() -> None:
    """Generate code from services' endpoint schemas."""


@gen.command("client", cls=MicroCommand)
@click.argument("service")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@click.option(
    "--from",
    "source",
    metavar="FILE[:CLASS]",
    help="Read the endpoints from this handler module instead of the registry.",
)
@click.option(
    "--version",
    help="The service's version in the registry (default: its only one, else 'latest').",
)
def client(service: str, output: Path | None, source: str | None, version: str | None) -> None:
    """Write a typed async client of SERVICE (to stdout, or -o FILE)."""
    from micro.codegen import endpoints_from, load_module, render

    if source is not None:
        path, _, only = source.partition(":")
        try:
            endpoints = endpoints_from(load_module(Path(path)), only or None)
        except (ValueError, TypeError) as exc:
            raise CliError(str(exc), 1) from None
        text = render(service, endpoints, source=f"the handler module {path}")
    else:
        found = run_with_client(lambda session: _lookup(session, service, version))
        text = render(
            service,
            found.endpoints,
            source=f"the registry (version {found.version})",
        )
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text)
    click.echo(f"Wrote {output}", err=True)


async def _lookup(session: Session, name: str, version: str | None) -> Service:
    from micro.cli.registry import lookup

    versions = {svc.version: svc for svc in await lookup(session, name)}
    if version is None and len(versions) == 1:
        return next(iter(versions.values()))
    wanted = version or "latest"
    if wanted not in versions:
        known = ", ".join(sorted(versions))
        raise CliError(f'Service "{name}" has no version {wanted!r} (it has {known})', 4)
    return versions[wanted]
