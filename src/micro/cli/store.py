"""``micro store``: read, write, list and delete records; databases and tables; snapshot
and restore to and from a file.

Defaults as in Micro: the database is the current namespace and the table ``micro``.
Values print one per line; ``-v`` prints a table ``KEY  VALUE  EXPIRY``; ``--output json``
prints the records as JSON. A snapshot is a file of JSON lines, one record each (values
base64), so a restore writes back exactly what was there, TTLs included.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import click

from micro.cli._client import Session, run_with_client
from micro.cli._format import table as columns
from micro.cli.errors import CliError
from micro.cli.main import SubGroup
from micro.durations import humanize, parse_duration

__all__ = ["store"]

_database = click.option(
    "-d", "--database", default="", help="Database (default: the current namespace)."
)
_table = click.option("-t", "--table", default="micro", show_default=True, help="Table.")
_limit = click.option(
    "-l", "--limit", type=click.IntRange(min=0), default=0, help="At most this many (0 = all)."
)
_offset = click.option(
    "-o", "--offset", type=click.IntRange(min=0), default=0, help="Skip this many first."
)
_order = click.option(
    "--order", type=click.Choice(["asc", "desc"]), default="asc", show_default=True
)
_output = click.option(
    "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def _db(session: Session, database: str) -> str:
    return database or session.namespace


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


@click.group("store", cls=SubGroup)
def store() -> None:
    """Read and write records of the store."""


@store.command("read")
@click.argument("key", default="")
@_database
@_table
@click.option("-p", "--prefix", is_flag=True, help="Read every record whose key starts with KEY.")
@click.option("-s", "--suffix", is_flag=True, help="Read every record whose key ends with KEY.")
@_limit
@_offset
@_order
@click.option("-v", "--verbose", is_flag=True, help="A table of KEY, VALUE and EXPIRY.")
@_output
def read(
    key: str,
    database: str,
    table: str,
    prefix: bool,
    suffix: bool,
    limit: int,
    offset: int,
    order: str,
    verbose: bool,
    output: str,
) -> None:
    """Read a record (or, with -p/-s, every record matching KEY)."""
    from micro.store.client import RPCStore

    async def body(session: Session) -> list[Any]:
        from micro import errors

        try:
            return await _read(session, key)
        except errors.NotFound:
            raise CliError("Not found", 1) from None  # Micro's plain error, exit 1

    async def _read(session: Session, key: str) -> list[Any]:
        return await RPCStore(session.client).read(
            key,
            database=_db(session, database),
            table=table,
            prefix=prefix,
            suffix=suffix,
            limit=limit,
            offset=offset,
            order=order,  # type: ignore[arg-type]
        )

    records = run_with_client(body)
    if output == "json":
        click.echo(json.dumps([_as_json(r) for r in records], indent=2))
    elif verbose:
        rows = [("KEY", "VALUE", "EXPIRY")]
        rows += [
            (r.key, _text(r.value), humanize(r.expiry) if r.expiry else "None") for r in records
        ]
        for line in columns(rows) if records else []:
            click.echo(line)
    else:
        for record in records:
            click.echo(_text(record.value))


def _as_json(record: Any) -> dict[str, Any]:
    return {
        "key": record.key,
        "value": _text(record.value),
        "metadata": record.metadata,
        "expiry": record.expiry,
        "version": record.version,
    }


@store.command("write")
@click.argument("key")
@click.argument("value", nargs=-1, required=True)
@click.option("-e", "--expiry", default="", help="Time to live: 10s, 5m, 1h (default: forever).")
@_database
@_table
@click.option(
    "--if-version",
    type=click.IntRange(min=0),
    default=None,
    help="Write only while the record's version is this (0: only if there is none).",
)
def write(
    key: str,
    value: tuple[str, ...],
    expiry: str,
    database: str,
    table: str,
    if_version: int | None,
) -> None:
    """Write a record: the VALUE words joined by spaces. With --if-version, a record at
    another version is a conflict (exit 127) and nothing is written."""
    from micro.store.base import Record
    from micro.store.client import RPCStore

    ttl = 0.0
    if expiry:
        try:
            ttl = parse_duration(expiry)
        except ValueError as exc:
            raise CliError(f"Invalid expiry: {exc}", 1) from None
    record = Record(key=key, value=" ".join(value).encode(), expiry=ttl)

    async def body(session: Session) -> None:
        await RPCStore(session.client).write(
            record, database=_db(session, database), table=table, if_version=if_version
        )

    run_with_client(body)


@store.command("list")
@click.argument("prefix", default="")
@_database
@_table
@click.option(
    "-p",
    "--prefix",
    "as_prefix",
    is_flag=True,
    hidden=True,
    help="Micro's flag: PREFIX is a prefix (always).",
)
@click.option("-s", "--suffix", default="", help="Only keys ending with this.")
@_limit
@_offset
@_order
@_output
def list_(
    prefix: str,
    database: str,
    table: str,
    as_prefix: bool,
    suffix: str,
    limit: int,
    offset: int,
    order: str,
    output: str,
) -> None:
    """List keys, one per line (those starting with PREFIX, if given)."""
    from micro.store.client import RPCStore

    async def body(session: Session) -> list[str]:
        return await RPCStore(session.client).list(
            database=_db(session, database),
            table=table,
            prefix=prefix,
            suffix=suffix,
            limit=limit,
            offset=offset,
            order=order,  # type: ignore[arg-type]
        )

    keys = run_with_client(body)
    if output == "json":
        click.echo(json.dumps(keys))
    else:
        for key in keys:
            click.echo(key)


@store.command("delete")
@click.argument("key")
@_database
@_table
def delete(key: str, database: str, table: str) -> None:
    """Delete a record."""
    from micro.store.client import RPCStore

    async def body(session: Session) -> None:
        await RPCStore(session.client).delete(key, database=_db(session, database), table=table)

    run_with_client(body)


@store.command("databases")
def databases() -> None:
    """List the databases, one per line."""
    from micro.store.client import RPCStore

    async def body(session: Session) -> list[str]:
        return await RPCStore(session.client).databases()

    for name in run_with_client(body):
        click.echo(name)


@store.command("tables")
@_database
def tables(database: str) -> None:
    """List the tables of a database, one per line."""
    from micro.store.client import RPCStore

    async def body(session: Session) -> list[str]:
        return await RPCStore(session.client).tables(_db(session, database))

    for name in run_with_client(body):
        click.echo(name)


@store.command("snapshot")
@click.option(
    "--destination",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: micro-store-<database>-<time>.jsonl here).",
)
@_database
@click.option("-t", "--table", default="", help="Only this table (default: all).")
def snapshot(destination: Path | None, database: str, table: str) -> None:
    """Save every record of a database (or one table) to a file."""
    from micro.store.client import RPCStore

    async def body(session: Session) -> tuple[Path, int]:
        db = _db(session, database)
        remote = RPCStore(session.client)
        names = [table] if table else await remote.tables(db)
        path = destination or Path(f"micro-store-{db}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
        tmp = path.with_name(path.name + ".tmp")
        count = 0
        with tmp.open("w") as fh:
            for name in names:
                for record in await remote.read("", database=db, table=name, prefix=True):
                    line = {
                        "database": db,
                        "table": name,
                        "key": record.key,
                        "value": base64.b64encode(record.value).decode(),
                        "metadata": record.metadata,
                        "expiry": record.expiry,
                    }
                    fh.write(json.dumps(line) + "\n")
                    count += 1
        tmp.replace(path)  # a half-written snapshot never takes the name
        return path, count

    path, count = run_with_client(body)
    click.echo(f"Saved {count} records to {path}")


@store.command("restore")
@click.option(
    "--source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A file made by micro store snapshot.",
)
@_database
def restore(source: Path, database: str) -> None:
    """Write back every record of a snapshot (into its database, or -d)."""
    from micro.store.client import RPCStore

    entries = _read_snapshot(source)

    async def body(session: Session) -> int:
        remote = RPCStore(session.client)
        for db, name, record in entries:
            await remote.write(record, database=database or db, table=name)
        return len(entries)

    count = run_with_client(body)
    click.echo(f"Restored {count} records from {source}")


def _read_snapshot(source: Path) -> list[tuple[str, str, Any]]:
    """Every record of a snapshot file, checked before anything is written."""
    from micro.store.base import Record

    entries = []
    with source.open() as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                record = Record(
                    key=raw["key"],
                    value=base64.b64decode(raw["value"], validate=True),
                    metadata=raw.get("metadata") or {},
                    expiry=float(raw.get("expiry") or 0),
                )
                entries.append((str(raw["database"]), str(raw["table"]), record))
            except (ValueError, KeyError, TypeError) as exc:
                raise CliError(f"{source}:{number}: not a snapshot record ({exc})", 1) from None
    return entries
