"""The ``micro`` command: built-in commands, then ``micro-<x>`` plugins on PATH.

Commands are imported only when they run, so ``micro --help`` and ``micro services``
start fast. Dispatch follows Micro (reference §3.1): a built-in command, else an
executable ``micro-<x>`` on PATH, else a service ``<x>`` in the registry called as a
command (:mod:`micro.cli.dynamic`), else an error naming the command. Only that last
step asks the server.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any

import click

from micro.cli.errors import CliError

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "auth": ("micro.cli.auth", "auth"),
    "call": (
        "micro.cli.call",
        "call",
    ),
    "cluster": ("micro.cli.cluster", "cluster"),
    "config": ("micro.cli.config", "config"),
    "debug": ("micro.cli.debug", "debug"),
    "env": ("micro.cli.env", "env"),
    "events": ("micro.cli.events", "events"),
    "example": ("micro.cli.example", "example"),
    "gen": ("micro.cli.gen", "gen"),
    "get": ("micro.cli.registry", "get"),
    "kill": ("micro.cli.runtime", "kill"),
    "login": ("micro.cli.user", "login"),
    "logs": ("micro.cli.runtime", "logs"),
    "logout": ("micro.cli.user", "logout"),
    "network": ("micro.cli.network", "network"),
    "new": ("micro.cli.new", "new"),
    "run": ("micro.cli.runtime", "run"),
    "server": ("micro.cli.server", "server"),
    "service": ("micro.cli.server", "service"),
    "services": ("micro.cli.registry", "services"),
    "status": ("micro.cli.runtime", "status"),
    "store": ("micro.cli.store", "store"),
    "stream": ("micro.cli.call", "stream"),
    "trace": ("micro.cli.trace", "trace"),
    "update": ("micro.cli.runtime", "update"),
    "user": ("micro.cli.user", "user"),
    "web": ("micro.cli.server", "web"),
}
"""Command name -> (module, attribute): loaded on use."""

_HELP: dict[str, str] = {
    "auth": "Manage authentication: accounts, rules and tokens",
    "call": "Call a service endpoint with a JSON request",
    "cluster": "Settings for running several servers as one platform",
    "config": "Manage configuration values: get, set, del",
    "debug": "Debug a service: health",
    "env": "Get, set, add or delete environments",
    "events": "Publish, consume and replay events; list topics",
    "example": "Copy an example service out of the package",
    "gen": "Generate code: a typed client of a service",
    "get": "Get a resource: a service's nodes and endpoints",
    "kill": "Stop a service the runtime runs, and forget it",
    "login": "Log in to the current environment and namespace",
    "logs": "Print (and follow) a service's logs",
    "logout": "Log out of the current environment and namespace",
    "network": "The network: services, nodes and routes of the namespace",
    "new": "Create a new service project from a template",
    "run": "Run a service from a folder or a git URL",
    "server": "Run the micro server",
    "service": "Run one building block as a service",
    "services": "List the services in the registry",
    "status": "The status of the services the runtime runs",
    "store": "Read, write, list and delete records; snapshot and restore",
    "stream": "Call a streaming endpoint and print each message",
    "trace": "Recent traces, or one trace as a tree of spans",
    "update": "Rebuild and restart a running service",
    "user": "Print the current user; its token, namespace and CLI config",
    "web": "Run the web dashboard alone",
}


def _parse_one_line(
    parse: Callable[[click.Context, list[str]], list[str]], ctx: click.Context, args: list[str]
) -> list[str]:
    """Parse, turning click's usage errors into one line with exit 1 (Micro's usage code).
    A group run without arguments prints its help, as Micro does."""
    try:
        return parse(ctx, args)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # click >= 8.2
            click.echo(ctx.get_help())
            ctx.exit(0)
        path = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
        message = exc.format_message().rstrip(".")
        raise CliError(f"{message}. See '{path} --help'", 1) from None


class MicroGroup(click.Group):
    """A group whose commands load lazily and whose unknown names get Micro's message."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command: click.Command = getattr(import_module(target[0]), target[1])
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return _parse_one_line(super().parse_args, ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if name not in COMMANDS and not name.startswith("-"):
            plugin = shutil.which(f"micro-{name}")
            if plugin is not None:
                os.execv(plugin, [plugin, *args[1:]])
            # A service of that name, looked up when run: after -n/-e take effect.
            from micro.cli.dynamic import DynamicCommand

            return name, DynamicCommand(name), args[1:]
        return super().resolve_command(ctx, args)


class _MicroHelp:
    """Help that opens with Micro's line ``micro <cmd> - <usage>``; one-line usage errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return _parse_one_line(super().parse_args, ctx, args)  # type: ignore[misc]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        assert isinstance(self, click.Command)
        formatter.write(f"{ctx.command_path} - {self.get_short_help_str(limit=200)}\n")
        formatter.write_paragraph()
        super().format_help(ctx, formatter)  # type: ignore[misc]


class MicroCommand(_MicroHelp, click.Command):
    """A command with Micro's help line and one-line usage errors."""


class SubGroup(_MicroHelp, click.Group):
    """A command group that rejects unknown subcommands in Micro's words."""

    command_class = MicroCommand

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            raise CliError(
                f"Unrecognized subcommand for {ctx.command_path}: {name}. "
                f"Please refer to '{ctx.command_path} --help'",
                1,
            )
        return super().resolve_command(ctx, args)


@click.group(
    cls=MicroGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-e", "--env", "env_name", envvar="MICRO_ENV", help="Environment to use for this command."
)
@click.option(
    "-n", "--namespace", envvar="MICRO_NAMESPACE", help="Namespace to use for this command."
)
@click.version_option(package_name="micro-python", prog_name="micro")
@click.pass_context
def cli(ctx: click.Context, env_name: str | None, namespace: str | None) -> None:
    """micro - a microservices platform for Python developers."""
    if env_name:
        os.environ["MICRO_ENV"] = env_name
    if namespace:
        os.environ["MICRO_NAMESPACE"] = namespace
    if ctx.invoked_subcommand is None:
        raise CliError("No command provided to micro. Please refer to 'micro --help'", 1)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``micro`` command."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return cli.main(args=args, prog_name="micro", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
