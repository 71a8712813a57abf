"""``micro auth``: accounts, rules and tokens of a namespace (reference §3.2, §6.7)::

    $ micro auth list rules
    ID       Scope     Access   Resource  Priority
    default  <public>  GRANTED  *:*:*     0
    $ micro auth create rule --access=granted --scope='*' --resource='*:*:*' onlyloggedin
    Rule created
    $ micro auth delete rule default
    Rule deleted
    $ micro auth create account --namespace foo --secret x jane
    Account created: {"id":"jane","type":"user","issuer":"foo",...,"secret":"x","name":"jane"}
    $ micro auth list accounts
    ID     Name   Scopes  Metadata
    admin  admin  admin   created=1700000000

Each command acts on the current namespace unless ``--namespace`` names another (a
``micro`` admin may manage every namespace). The platform's refusals are printed in its
own words: ``Error: A rule with this ID already exists``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from micro.cli._client import Session, run_with_client
from micro.cli._format import table
from micro.cli.errors import CliError, detailed
from micro.cli.main import SubGroup

if TYPE_CHECKING:
    from micro.auth.base import Auth

__all__ = ["auth"]

T = TypeVar("T")

_namespace = click.option(
    "--namespace", default="", help="Namespace to act in (default: the current one)."
)


def _run(action: Callable[[Auth, str, Session], Awaitable[T]], namespace: str) -> T:
    """Run ``action(auth, namespace, session)`` with the CLI's client; the platform's
    refusals as ``Error: <detail>``."""

    async def body(session: Session) -> T:
        from micro.auth.client import RPCAuth

        try:
            return await action(RPCAuth(session.client), namespace or session.namespace, session)
        except Exception as exc:
            raise detailed(exc, proxy=session.proxy) from None

    return run_with_client(body)


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    for line in table(rows):
        click.echo(line)


@click.group("auth", cls=SubGroup)
def auth() -> None:
    """Manage authentication: accounts, rules and tokens."""


# -- list --------------------------------------------------------------------------------


@auth.group("list", cls=SubGroup)
def list_() -> None:
    """List auth resources: rules, accounts."""


@list_.command("rules")
@_namespace
def list_rules(namespace: str) -> None:
    """List the rules, highest priority first."""

    async def action(a: Auth, ns: str, _: Session) -> list[Any]:
        return await a.rules(namespace=ns)

    rules = sorted(_run(action, namespace), key=lambda r: (-r.priority, r.id))
    rows = [("ID", "Scope", "Access", "Resource", "Priority")]
    rows += [
        (r.id, r.scope or "<public>", r.access.upper(), str(r.resource), str(r.priority))
        for r in rules
    ]
    _print_table(rows)


@list_.command("accounts")
@_namespace
def list_accounts(namespace: str) -> None:
    """List the accounts."""

    async def action(a: Auth, ns: str, _: Session) -> list[Any]:
        return await a.accounts(namespace=ns)

    rows = [("ID", "Name", "Scopes", "Metadata")]
    for acc in _run(action, namespace):
        metadata = " ".join(f"{k}={v}" for k, v in sorted(acc.metadata.items()))
        rows.append((acc.id, acc.name or acc.id, ", ".join(acc.scopes) or "n/a", metadata or "n/a"))
    _print_table(rows)


# -- create ------------------------------------------------------------------------------


@auth.group("create", cls=SubGroup)
def create() -> None:
    """Create an auth resource: rule, account, token."""


@create.command("rule")
@click.argument("id")
@click.option("--scope", default="", help="Scope: '' (public), '*' (any account), or one to hold.")
@click.option("--resource", default="", help="type:name:endpoint, e.g. service:auth:*")
@click.option("--access", default="granted", show_default=True, help="granted or denied.")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher first.")
@_namespace
def create_rule(
    id: str, scope: str, resource: str, access: str, priority: int, namespace: str
) -> None:
    """Create a rule."""
    from micro.auth.base import Resource, Rule

    level = access.strip().lower()
    if level not in ("granted", "denied"):
        raise CliError(f"Error: Invalid access: {access}, must be granted or denied", 1)
    try:
        target = Resource.parse(resource)
    except ValueError as exc:
        raise CliError(f"Error: {exc}", 1) from None
    rule = Rule(id=id, resource=target, scope=scope, access=level, priority=priority)  # type: ignore[arg-type]

    async def action(a: Auth, ns: str, _: Session) -> None:
        await a.grant(rule, namespace=ns)

    _run(action, namespace)
    click.echo("Rule created")


@create.command("account")
@click.argument("id")
@click.option("--secret", default="", help="The secret (password); random if not given.")
@click.option(
    "--scopes", multiple=True, help="Scopes to give the account (repeat, or comma separated)."
)
@click.option("--type", "kind", default="user", show_default=True, help="Account type.")
@click.option("--name", default="", help="A friendly name, unique in the namespace.")
@_namespace
def create_account(
    id: str, secret: str, scopes: tuple[str, ...], kind: str, name: str, namespace: str
) -> None:
    """Create an account; prints it once with its secret."""
    wanted = [s.strip() for value in scopes for s in value.split(",") if s.strip()]

    async def action(a: Auth, ns: str, _: Session) -> Any:
        return await a.generate(
            id, secret=secret, name=name, type=kind, scopes=wanted, namespace=ns
        )

    acc = _run(action, namespace)
    shown = {
        "id": acc.id,
        "type": acc.type,
        "issuer": acc.issuer,
        "metadata": acc.metadata or None,
        "scopes": acc.scopes,
        "secret": acc.secret,
        "name": acc.name or acc.id,
    }
    click.echo(f"Account created: {json.dumps(shown, separators=(',', ':'))}")


@create.command("token")
@click.option("--id", "account", default="", help="Account id (or name).")
@click.option("--secret", default="", help="Its secret.")
@click.option(
    "--expiry", type=int, default=0, help="Seconds the access token lives (0: the default)."
)
@_namespace
def create_token(account: str, secret: str, expiry: int, namespace: str) -> None:
    """Create a token for an account (a login, without saving it)."""
    if not account:
        raise CliError("Missing account ID", 1)
    if not secret:
        raise CliError("Missing account secret", 1)
    if expiry < 0:
        raise CliError("Error: Expiry must not be negative", 1)

    async def action(a: Auth, ns: str, _: Session) -> Any:
        return await a.token(id=account, secret=secret, expiry=expiry, namespace=ns)

    token = _run(action, namespace)
    shown = {
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "created": token.created,
        "expiry": token.expiry,
    }
    click.echo(f"Token created: {json.dumps(shown, separators=(',', ':'))}")


# -- delete ------------------------------------------------------------------------------


@auth.group("delete", cls=SubGroup)
def delete() -> None:
    """Delete an auth resource: rule, account."""


@delete.command("rule")
@click.argument("id")
@_namespace
def delete_rule(id: str, namespace: str) -> None:
    """Delete a rule."""

    async def action(a: Auth, ns: str, _: Session) -> None:
        await a.revoke_rule(id, namespace=ns)

    _run(action, namespace)
    click.echo("Rule deleted")


@delete.command("account")
@click.argument("id")
@_namespace
def delete_account(id: str, namespace: str) -> None:
    """Delete an account (not your own)."""

    async def action(a: Auth, ns: str, session: Session) -> None:
        login = session.credentials.current()
        if login is not None and (login.account, login.namespace) == (id, ns):
            raise CliError("Can't delete your own account", 1)
        await a.delete_account(id, namespace=ns)

    _run(action, namespace)
    click.echo("Account deleted")


# -- update ------------------------------------------------------------------------------


@auth.group("update", cls=SubGroup)
def update() -> None:
    """Update an auth resource: secret."""


@update.command("secret")
@click.argument("id")
@click.option("--old_secret", "--old-secret", "old_secret", default="", help="Current secret.")
@click.option("--new_secret", "--new-secret", "new_secret", default="", help="New secret.")
@_namespace
def update_secret(id: str, old_secret: str, new_secret: str, namespace: str) -> None:
    """Change an account's secret (admins may omit the old one)."""
    if not new_secret:
        raise CliError("Missing new secret: --new_secret", 1)

    async def action(a: Auth, ns: str, _: Session) -> None:
        await a.change_secret(id, new_secret=new_secret, old_secret=old_secret, namespace=ns)

    _run(action, namespace)
    click.echo("Account updated")
