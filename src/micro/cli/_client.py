"""The CLI's client: the current environment's proxy and namespace, errors rendered.

Every command that talks to a server goes through :func:`run_with_client`, so they all
agree on which server (``MICRO_PROXY``, ``-e``/``MICRO_ENV``, the current environment),
which namespace (``-n``/``MICRO_NAMESPACE``, then the environment's current one) and how
failures read (``Failed to connect to micro server at 127.0.0.1:8081``, exit 4) and who
is calling: the login of that environment, proxy and namespace in ``MICRO_HOME/tokens``
(``micro login``), its access token refreshed when less than a minute is left.

Kept light at import time: ``micro services`` must start, ask and print in a blink.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from micro.cli.errors import CliError, render

if TYPE_CHECKING:
    from pathlib import Path

    from micro.auth.base import Auth
    from micro.auth.credentials import Credentials
    from micro.envs import UserConfig
    from micro.rpc.client import Client
    from micro.settings import Settings

__all__ = ["Session", "Target", "credentials", "run_with_client", "target", "user_config"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the CLI's calls go."""

    settings: Settings
    env: str
    proxy: str
    namespace: str


@dataclass(frozen=True, slots=True)
class Session:
    """What a command's async body gets: the client and where it points."""

    client: Client
    env: str
    proxy: str
    namespace: str
    credentials: Credentials


def user_config(home: Path | None = None) -> UserConfig:
    """``MICRO_HOME/config.json``, or one clear line saying why it cannot be used."""
    from micro.envs import UserConfig
    from micro.settings import home as micro_home

    try:
        return UserConfig(home or micro_home())
    except OSError as exc:
        raise CliError(
            f"Cannot use {exc.filename or 'MICRO_HOME'}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise render(exc) from None


def target() -> Target:
    """Resolve settings, environment, proxy address and namespace; one-line errors."""
    from micro.envs import resolve_proxy
    from micro.settings import load

    try:
        settings = load()
    except ValueError as exc:
        raise render(exc) from None
    config = user_config(settings.home)
    if settings.env and settings.env not in config.environments():
        raise CliError(f"Environment '{settings.env}' does not exist", 1)
    try:
        env, proxy = resolve_proxy(settings)
    except KeyError as exc:
        raise CliError(f"Environment '{exc.args[0]}' does not exist", 1) from None
    if not proxy:
        raise CliError(
            f"Environment '{env}' has no proxy address: set one with "
            f"'micro env add {env} <host:port>' or MICRO_PROXY",
            1,
        )
    namespace = settings.namespace or config.namespace(env)
    return Target(settings, env, _normalise(proxy), namespace)


def _normalise(proxy: str) -> str:
    """Micro's rule: an address without a port means TLS on port 443."""
    from micro.auth.credentials import normalise_proxy

    try:
        return normalise_proxy(proxy)
    except ValueError as exc:
        raise CliError(f"Invalid proxy address: {exc}", 1) from None


def credentials(where: Target) -> Credentials:
    """The login the CLI calls ``where`` with (none yet is fine): the one of its
    namespace, else (``-n`` aimed elsewhere) the one of the environment's current
    namespace."""
    from micro.auth.credentials import Credentials

    current = user_config(where.settings.home).namespace(where.env)
    return Credentials(
        where.settings.home, where.env, where.proxy, where.namespace, fallback=current
    )


def run_with_client(body: Callable[[Session], Coroutine[Any, Any, T]]) -> T:
    """Run ``body`` with a client through the proxy, close it, and turn any failure into
    one line and Micro's exit code. Ctrl-C exits 130 without a word. The client calls as
    the logged-in account, if any (``micro login``)."""
    where = target()
    login = credentials(where)

    async def main() -> T:
        import logging

        from micro.auth.credentials import client_middleware
        from micro.client import new_client

        # Failures reach the user as one line; the library's warnings about them would
        # only repeat it (Python prints unhandled warnings to stderr).
        logging.getLogger("micro").addHandler(logging.NullHandler())

        def auth() -> Auth:  # only made when a token needs refreshing
            from micro.auth.client import RPCAuth

            return RPCAuth(client)

        client = new_client(
            where.settings,
            via_proxy=True,
            namespace=where.namespace,
            proxy=where.proxy,
            middleware=[client_middleware(login, auth)],
            identity=False,  # the login above is the CLI's identity (and its -n fallback)
        )
        try:
            return await body(Session(client, where.env, where.proxy, where.namespace, login))
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except (CliError, BrokenPipeError):
        raise  # click ends a command whose reader went away (| head) quietly
    except Exception as exc:
        raise render(exc, proxy=where.proxy) from None
