"""``micro cluster env``: the settings every replica of a cluster shares, as a dotenv file.

Replicas in the ``cluster`` profile keep nothing on their own disks, so the two secrets a
lone server would generate under ``MICRO_HOME`` (the key that signs tokens, the key that
seals config secrets) must be made once and given to every replica. This prints them with
the backend addresses, ready for ``set -a; . ./cluster.env; set +a`` or a systemd
``EnvironmentFile=``.
"""

from __future__ import annotations

import click

from micro.cli.main import MicroCommand, SubGroup

__all__ = ["cluster"]


@click.group("cluster", cls=SubGroup)
def cluster() -> None:
    """Settings for running several servers as one platform."""


@cluster.command("env", cls=MicroCommand)
@click.option(
    "--store_address",
    default="postgresql://127.0.0.1:5432/micro",
    show_default=True,
    help="PostgreSQL: store, config and auth.",
)
@click.option(
    "--nats_address",
    default="nats://127.0.0.1:4222",
    show_default=True,
    help="NATS with JetStream: broker and events.",
)
@click.option(
    "--registry_address",
    default="http://127.0.0.1:2379",
    show_default=True,
    help="etcd: the registry.",
)
def env(store_address: str, nats_address: str, registry_address: str) -> None:
    """Print a cluster's shared settings, with freshly made secrets (keep them secret)."""
    from micro.server.profiles import cluster_env

    shared = cluster_env(store=store_address, nats=nats_address, registry=registry_address)
    for name, value in shared.items():
        click.echo(f"{name}={value}")
