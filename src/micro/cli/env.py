"""``micro env``: the servers the CLI knows, and which one it talks to.

``micro env`` lists them (the current one starred)::

    * local   127.0.0.1:8081   Local running Micro Server
      prod    10.0.0.5:8081    Production

``env get`` prints the current name, ``env set <name>`` changes it, ``env add <name>
[host:port]`` and ``env del <name>`` manage the list. ``-e``/``MICRO_ENV`` picks one for a
single command and ``MICRO_PROXY`` overrides its address.
"""

from __future__ import annotations

import os

import click

from micro.cli._client import user_config
from micro.cli.errors import CliError
from micro.cli.main import SubGroup
from micro.envs import BUILTIN, Environment, UserConfig

__all__ = ["env"]


def _current(config: UserConfig) -> str:
    return os.environ.get("MICRO_ENV", "").strip() or config.current_env()


@click.group("env", cls=SubGroup, invoke_without_command=True)
@click.pass_context
def env(ctx: click.Context) -> None:
    """Get, set, add or delete environments.

    With no subcommand, list them; the current one is starred.
    """
    if ctx.invoked_subcommand is not None:
        return
    config = user_config()
    current = _current(config)
    envs = sorted(config.environments().values(), key=lambda e: e.name)
    names = [f"{'*' if e.name == current else ' '} {e.name}" for e in envs]
    addresses = [e.proxy_address or "none" for e in envs]
    name_width = max(len(n) for n in names)
    address_width = max(len(a) for a in addresses)
    for name, address, e in zip(names, addresses, envs, strict=True):
        line = f"{name.ljust(name_width)}   {address.ljust(address_width)}   {e.description}"
        click.echo(line.rstrip())


@env.command("get")
def get() -> None:
    """Print the current environment's name."""
    click.echo(_current(user_config()))


@env.command("set")
@click.argument("name")
def set_(name: str) -> None:
    """Make NAME the current environment."""
    config = user_config()
    try:
        config.set_env(name)
    except KeyError:
        raise CliError(f"Environment '{name}' does not exist", 1) from None
    except OSError as exc:
        raise CliError(f"Cannot save {config.path}: {exc.strerror or exc}", 1) from None


@env.command("add")
@click.argument("name")
@click.argument("address", required=False, default="")
@click.option("-d", "--description", default="", help="What this environment is.")
def add(name: str, address: str, description: str) -> None:
    """Add an environment.

    NAME and the host:port of its proxy (may be left empty; no port means TLS on 443).
    """
    from micro.wire.transport import parse_address

    if not name.strip() or any(c.isspace() or c in "./" for c in name):
        raise CliError(f"Invalid environment name {name!r}", 1)
    if name in BUILTIN:
        raise CliError(f"Environment '{name}' is built in and cannot be changed", 1)
    address = address.strip()
    if address:
        try:
            parse_address(address, default_port=443)
        except ValueError as exc:
            raise CliError(f"Invalid proxy address: {exc}", 1) from None
    config = user_config()
    try:
        config.add_env(Environment(name, address, description))
    except OSError as exc:
        raise CliError(f"Cannot save {config.path}: {exc.strerror or exc}", 1) from None


@env.command("del")
@click.argument("name")
def delete(name: str) -> None:
    """Delete an environment.

    Neither the current environment nor the built-in local can be deleted.
    """
    config = user_config()
    if name == config.current_env():
        raise CliError(
            f"Environment '{name}' is your current environment. "
            "Before deleting it, please change your current environment.",
            1,
        )
    if name in BUILTIN:
        raise CliError(f"Environment '{name}' is built in and cannot be deleted", 1)
    if name not in config.environments():
        raise CliError(f"Environment '{name}' does not exist", 1)
    try:
        config.delete_env(name)
    except OSError as exc:
        raise CliError(f"Cannot save {config.path}: {exc.strerror or exc}", 1) from None
