"""``micro login``, ``micro logout`` and ``micro user``: who the CLI is (reference §3.2).

::

    $ micro login --username admin
    Enter password:
    Successfully logged in.
    $ micro user
    admin
    $ micro user namespace set foo        # logins are per namespace: log in there next
    $ micro user config
    user: admin
    namespace: foo
    environment: local
    git.credentials: n/a
    git.baseurl: n/a
    $ micro logout

A login is kept in ``MICRO_HOME/tokens`` (mode 0600) for the environment's proxy, the
namespace and the account; ``<env>.current-user`` in ``config.json`` names the account.
Every other command then calls as that account (:mod:`micro.auth.credentials`).
"""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, Any

import click

from micro.cli._client import Session, credentials, run_with_client, target, user_config
from micro.cli.errors import CliError, detailed, render
from micro.cli.main import MicroCommand, SubGroup

if TYPE_CHECKING:
    from micro.auth.base import Token
    from micro.envs import UserConfig

__all__ = ["login", "logout", "user"]

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_NOT_LOGGED_IN = "You are not logged in"


def _ask(prompt: str, *, hidden: bool) -> str:
    """Read an answer: hidden (no echo) on a terminal; a plain line from a pipe."""
    if sys.stdin.isatty():
        answer: str = click.prompt(prompt, hide_input=hidden, default="", show_default=False)
        return answer.strip()
    click.echo(f"{prompt}: ", nl=False)
    line = sys.stdin.readline()
    click.echo()
    if not line:
        raise CliError(f"{prompt}: no answer (end of input)", 1)
    return line.strip()


def _account_of(token: Token, fallback: str) -> str:
    """The id of the account a fresh token was issued to (its ``sub``)."""
    from micro.auth.credentials import token_claims

    sub = token_claims(token.access_token).get("sub")
    return sub if isinstance(sub, str) and sub else fallback


# -- login / logout ----------------------------------------------------------------------


@click.command("login", cls=MicroCommand)
@click.option("--username", "--email", "username", default="", help="Account id or name.")
@click.option(
    "--password",
    default="",
    help="Password; asked for (hidden) if not given. Useful for scripts.",
)
def login(username: str, password: str) -> None:
    """Log in to the current environment and namespace.

    Asks for the username and password when not given as flags.
    """
    from micro.auth.credentials import ACCESS_TOKEN_LIFE

    where = target()
    if not username:
        username = _ask("Enter username", hidden=False)
    credentials(where).forget()  # as Micro: the old login goes first
    if not password:
        password = _ask("Enter password", hidden=True)

    async def body(session: Session) -> None:
        from micro.auth.client import RPCAuth

        try:
            token = await RPCAuth(session.client).token(
                id=username,
                secret=password,
                expiry=ACCESS_TOKEN_LIFE,
                namespace=session.namespace,
            )
        except Exception as exc:
            raise detailed(exc, proxy=session.proxy) from None
        session.credentials.save(_account_of(token, username), token)

    run_with_client(body)
    click.echo("Successfully logged in.")


@click.command("logout", cls=MicroCommand)
def logout() -> None:
    """Log out of the current environment and namespace.

    The server forgets the session (its refresh token), then so does this machine.
    """
    from micro import errors

    if credentials(target()).current(exact=True) is None:
        return

    async def body(session: Session) -> str:
        from micro.auth.client import RPCAuth

        login = session.credentials.current(exact=True)
        if login is None:
            return ""
        try:
            await RPCAuth(session.client).revoke(
                login.token.refresh_token, namespace=login.namespace
            )
        except errors.MicroError as exc:
            return render(exc, proxy=session.proxy).format_message()
        finally:
            session.credentials.file.remove(*login.key)
        return ""

    problem = run_with_client(body)
    if problem:
        click.echo(f"Logged out here, but the server was not told: {problem}", err=True)


# -- user --------------------------------------------------------------------------------


def _where() -> tuple[UserConfig, str, str]:
    """(config.json, environment, namespace) for commands that need no server."""
    from micro.settings import load

    try:
        settings = load()
    except ValueError as exc:
        raise render(exc) from None
    config = user_config(settings.home)
    env = settings.env or config.current_env()
    if env not in config.environments():
        raise CliError(f"Environment '{env}' does not exist", 1)
    return config, env, settings.namespace or config.namespace(env)


def _display_name() -> str | None:
    """The logged-in account's name (or id), read from the stored login; no server."""
    from micro.auth.credentials import token_claims

    login = credentials(target()).current()
    if login is None:
        return None
    claims = token_claims(login.token.access_token)
    name = claims.get("name") or claims.get("sub") or login.account
    return str(name)


@click.group("user", cls=SubGroup, invoke_without_command=True)
@click.pass_context
def user(ctx: click.Context) -> None:
    """Print the current logged in user.

    Subcommands show the access token, get or set the namespace, and manage the CLI's
    own config (config.json).
    """
    if ctx.invoked_subcommand is not None:
        return
    name = _display_name()
    if name is None:
        raise CliError(_NOT_LOGGED_IN, 1)
    click.echo(name)


@user.command("token")
def token() -> None:
    """Print the current access token (refreshed if it is about to expire)."""

    async def body(session: Session) -> str | None:
        from micro.auth.client import RPCAuth

        try:
            return await session.credentials.access_token(RPCAuth(session.client))
        except Exception as exc:
            raise detailed(exc, proxy=session.proxy) from None

    access = run_with_client(body)
    if access is None:
        raise CliError(_NOT_LOGGED_IN, 1)
    click.echo(access)


@user.group("namespace", cls=SubGroup, invoke_without_command=True)
@click.pass_context
def namespace(ctx: click.Context) -> None:
    """Print the current namespace."""
    if ctx.invoked_subcommand is None:
        click.echo(_where()[2])


@namespace.command("set")
@click.argument("name")
def namespace_set(name: str) -> None:
    """Set the namespace of the current environment.

    Logins are per namespace: log in again there (the login left in the namespace you
    leave is kept for when you come back).
    """
    if not _NAMESPACE.fullmatch(name):
        raise CliError(
            f"Invalid namespace {name!r}: letters, digits, '_', '.' and '-' (up to 128)", 1
        )
    config, env, _ = _where()
    try:
        config.set(f"namespaces.{env}.current", name)
    except OSError as exc:
        raise CliError(f"Cannot save {config.path}: {exc.strerror or exc}", 1) from None


@user.group("config", cls=SubGroup, invoke_without_command=True)
@click.pass_context
def config(ctx: click.Context) -> None:
    """Manage the CLI's config: get, set, delete KEY [VALUE].

    Keys are dotted paths into config.json. Without a subcommand, print a summary.
    """
    if ctx.invoked_subcommand is not None:
        return
    cfg, env, ns = _where()
    try:
        name = _display_name()
    except CliError:  # no proxy address for this environment: nobody is logged in
        name = None
    base_url = cfg.get(f"git.{env}.baseurl") or cfg.get("git.baseurl") or "n/a"
    click.echo(f"user: {name or 'n/a'}")
    click.echo(f"namespace: {ns}")
    click.echo(f"environment: {env}")
    click.echo(f"git.credentials: {'[hidden]' if cfg.get('git.credentials') else 'n/a'}")
    click.echo(f"git.baseurl: {_text(base_url)}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _key(key: str) -> str:
    if not key.strip() or any(not part for part in key.split(".")):
        raise CliError(f"Invalid key {key!r}: a dotted path such as git.baseurl", 1)
    return key


@config.command("get")
@click.argument("key")
def config_get(key: str) -> None:
    """Print the value at KEY (objects as JSON)."""
    value = user_config().get(_key(key))
    if value is None or value == "":
        raise CliError("Not found", 1)
    click.echo(_text(value))


@config.command("set")
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Set KEY to VALUE (a string)."""
    cfg = user_config()
    try:
        cfg.set(_key(key), value)
    except OSError as exc:
        raise CliError(f"Cannot save {cfg.path}: {exc.strerror or exc}", 1) from None


@config.command("delete")
@click.argument("key")
def config_delete(key: str) -> None:
    """Delete KEY."""
    cfg = user_config()
    try:
        cfg.set(_key(key), None)
    except OSError as exc:
        raise CliError(f"Cannot save {cfg.path}: {exc.strerror or exc}", 1) from None


@user.group("set", cls=SubGroup)
def set_() -> None:
    """Set properties of your account: password."""


@set_.command("password")
@click.option("--email", default="", help="Account id (default: the logged-in account).")
@click.option("--old-password", default="", help="The current password (asked if not given).")
@click.option("--new-password", default="", help="The new password (asked twice if not given).")
def set_password(email: str, old_password: str, new_password: str) -> None:
    """Change an account's password."""
    where = target()
    account, namespace = email, ""  # another account: in the command's namespace
    if not account:
        login = credentials(where).current()
        if login is None:
            raise CliError(_NOT_LOGGED_IN, 1)
        account, namespace = login.account, login.namespace
    if not old_password:
        old_password = _ask("Enter current password", hidden=True)
    while not new_password:
        first = _ask("Enter a new password", hidden=True)
        second = _ask("Verify your password", hidden=True)
        if first == second and first:
            new_password = first
        elif not sys.stdin.isatty():
            raise CliError("Passwords do not match", 1)
        else:
            click.echo("Passwords do not match. Please try again.")

    async def body(session: Session) -> None:
        from micro.auth.client import RPCAuth

        try:
            await RPCAuth(session.client).change_secret(
                account,
                new_secret=new_password,
                old_secret=old_password,
                namespace=namespace or session.namespace,
            )
        except Exception as exc:
            raise detailed(exc, proxy=session.proxy) from None

    run_with_client(body)
