"""``micro config get|set|del``: the current namespace's config tree (reference §3.2)::

$ micro config set db '{"host": "10.0.0.1", "port": 5432}'
$ micro config get db.host
10.0.0.1
$ micro config get db
{"host":"10.0.0.1","port":5432}
$ micro config set db.password hunter2 --secret
$ micro config get db.password
[secret]
$ micro config get nothing
Not found                                   (on stderr, exit 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from micro.cli._client import Session, run_with_client
from micro.cli.errors import CliError
from micro.cli.main import SubGroup

if TYPE_CHECKING:
    from micro.config.base import Value

__all__ = ["config", "parse_value", "render_value"]

_secret_option = click.option(
    "-s", "--secret", is_flag=True, help="Reveal (get) or encrypt (set) secret values."
)


@click.group("config", cls=SubGroup)
def config() -> None:
    """Manage configuration values: get, set, del.

    Paths are dotted (db.primary.host); values belong to the current namespace.
    """


def _check_path(path: str) -> None:
    from micro import errors
    from micro.config.base import split_path

    try:
        split_path(path)
    except errors.BadRequest as exc:
        raise CliError(exc.detail[:1].upper() + exc.detail[1:], 1) from None


def parse_value(text: str) -> Any:
    """The value typed: JSON when it parses as JSON, else the text as a string."""
    import msgspec

    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def render_value(value: Value) -> str:
    """A string leaf as it is; anything else as compact JSON (``<>&`` kept as they are)."""
    if isinstance(value.data, str):
        return value.data
    return value.bytes().decode()


@config.command("get")
@click.argument("path")
@_secret_option
def get(path: str, secret: bool) -> None:
    """Get a value: a string as it is, anything else as JSON; 'Not found' if missing."""
    _check_path(path)

    async def body(session: Session) -> Value:
        from micro.config.client import RPCConfig

        return await RPCConfig(session.client).get(path, secret=secret, namespace=session.namespace)

    value = run_with_client(body)
    if not value.exists:
        raise CliError("Not found", 1)
    click.echo(render_value(value))


@config.command("set")
@click.argument("path")
@click.argument("value")
@_secret_option
def set_(path: str, value: str, secret: bool) -> None:
    """Set a value: JSON, else a string. Objects merge into what is there."""
    _check_path(path)
    parsed = parse_value(value)

    async def body(session: Session) -> None:
        from micro.config.client import RPCConfig

        await RPCConfig(session.client).set(
            path, parsed, secret=secret, namespace=session.namespace
        )

    run_with_client(body)


@config.command("del")
@click.argument("path")
def delete(path: str) -> None:
    """Delete a value and everything under it (a missing path is fine)."""
    _check_path(path)

    async def body(session: Session) -> None:
        from micro.config.client import RPCConfig

        await RPCConfig(session.client).delete(path, namespace=session.namespace)

    run_with_client(body)
