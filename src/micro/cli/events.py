"""``micro events``: publish, consume, read and list topics of the events service.

Events print one JSON object a line: ``{"id", "topic", "sequence", "timestamp", "payload",
"metadata"}`` (plus ``attempt`` when consumed), the payload as JSON when it is, else as
text, else ``base64:...``. An offset is a sequence number or an RFC 3339 time.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
from typing import Any

import click

from micro.cli._client import Session, run_with_client
from micro.cli.errors import CliError
from micro.cli.main import SubGroup

__all__ = ["events"]

_IDLE = 2.0
"""Without --follow: how long to wait for the next stored event before stopping."""


def _offset(text: str | None) -> int | datetime.datetime | None:
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        at = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"Invalid offset {text!r}: a sequence number or an RFC 3339 time") from None
    return at if at.tzinfo else at.replace(tzinfo=datetime.UTC)


def _payload(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        pass
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


def _line(event: Any, attempt: int | None = None) -> str:
    out: dict[str, Any] = {
        "id": event.id,
        "topic": event.topic,
        "sequence": event.sequence,
        "timestamp": datetime.datetime.fromtimestamp(event.timestamp, tz=datetime.UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "payload": _payload(event.payload),
    }
    if event.metadata:
        out["metadata"] = event.metadata
    if attempt is not None:
        out["attempt"] = attempt
    return json.dumps(out, ensure_ascii=False)


@click.group("events", cls=SubGroup)
def events() -> None:
    """Publish, consume and replay events."""


@events.command("publish")
@click.argument("topic")
@click.argument("payload")
@click.option("-m", "--metadata", multiple=True, help="KEY=VALUE metadata (repeatable).")
def publish(topic: str, payload: str, metadata: tuple[str, ...]) -> None:
    """Publish PAYLOAD (JSON, or any text) to TOPIC; print the stored event."""
    from micro.events.client import RPCStream

    meta: dict[str, str] = {}
    for item in metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"Invalid metadata {item!r}: use KEY=VALUE")
        meta[key] = value

    async def body(session: Session) -> Any:
        return await RPCStream(session.client).publish(
            topic, payload.encode(), metadata=meta or None
        )

    click.echo(_line(run_with_client(body)))


@events.command("consume")
@click.argument("topic")
@click.option("-g", "--group", default="", help="Consumer group (default: a group of one).")
@click.option("-o", "--offset", default="", help="Sequence number or RFC 3339 time to start at.")
@click.option("-f", "--follow", is_flag=True, help="Keep waiting for new events.")
def consume(topic: str, group: str, offset: str, follow: bool) -> None:
    """Consume TOPIC, one JSON line per event (without --follow: up to the last stored)."""
    from micro.events.client import RPCStream

    start = _offset(offset)

    async def body(session: Session) -> None:
        stream = RPCStream(session.client)
        last = 0
        if not follow:
            stored = await stream.read(topic, limit=1_000_000)
            if not stored:
                return
            last = stored[-1].sequence
        if start is None and not group:
            where: int | datetime.datetime | None = 1 if not follow else None
        else:
            where = start
        async with stream.consume(
            topic, group=group or None, offset=where, auto_ack=False
        ) as consumer:
            while True:
                if follow:
                    delivery = await consumer.next()
                else:
                    try:  # a group already past the last stored event gets nothing
                        async with asyncio.timeout(_IDLE):
                            delivery = await consumer.next()
                    except TimeoutError:
                        return
                    if delivery.event.sequence > last:
                        return  # not acked: it stays for the group
                click.echo(_line(delivery.event, delivery.attempt))
                await delivery.ack()
                if not follow and delivery.event.sequence >= last:
                    return

    run_with_client(body)


@events.command("read")
@click.argument("topic")
@click.option("-l", "--limit", type=click.IntRange(min=0), default=250, show_default=True)
@click.option("-o", "--offset", default="", help="Sequence number or RFC 3339 time to start at.")
def read(topic: str, limit: int, offset: str) -> None:
    """Print stored events of TOPIC without consuming them."""
    from micro.events.client import RPCStream

    start = _offset(offset)

    async def body(session: Session) -> list[Any]:
        return await RPCStream(session.client).read(topic, limit=limit, offset=start)

    for event in run_with_client(body):
        click.echo(_line(event))


@events.command("topics")
def topics() -> None:
    """List the topics of the current namespace."""
    from micro.events.client import RPCStream

    async def body(session: Session) -> list[str]:
        return await RPCStream(session.client).topics()

    for name in run_with_client(body):
        click.echo(name)


@events.command("groups")
@click.argument("topic")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def groups(topic: str, output: str) -> None:
    """Show the consumer groups of TOPIC: the sequence each gets next, its unacked
    deliveries and its lag (stored events it has not been given yet)."""
    from micro.cli._format import table
    from micro.events.client import RPCStream

    async def body(session: Session) -> list[Any]:
        return await RPCStream(session.client).groups(topic)

    found = run_with_client(body)
    if output == "json":
        click.echo(json.dumps([_group(g) for g in found], indent=2))
        return
    if not found:
        return
    rows = [("GROUP", "NEXT", "PENDING", "LAG")]
    rows += [(g.group, str(g.next), str(g.pending), str(g.lag)) for g in found]
    for line in table(rows):
        click.echo(line)


def _group(group: Any) -> dict[str, Any]:
    return {"group": group.group, "next": group.next, "pending": group.pending, "lag": group.lag}


@events.command("reset")
@click.argument("topic")
@click.argument("group")
@click.option("-o", "--offset", default="", help="Sequence number or RFC 3339 time to move to.")
@click.option("--time", "at", default="", help="RFC 3339 time: the first event at or after it.")
@click.option("--end", is_flag=True, help="Past every stored event (only new ones from now).")
def reset(topic: str, group: str, offset: str, at: str, end: bool) -> None:
    """Move consumer GROUP of TOPIC to an offset (made if new); its unacked deliveries are
    forgotten. Exactly one of --offset, --time and --end."""
    from micro.events.client import RPCStream

    if sum(map(bool, (offset, at, end))) != 1:
        raise CliError("Give exactly one of --offset, --time and --end")
    if at and at.isdigit():
        raise CliError(f"Invalid time {at!r}: an RFC 3339 time (a sequence goes in --offset)")
    start = None if end else _offset(offset or at)

    async def body(session: Session) -> Any:
        return await RPCStream(session.client).reset(topic, group, offset=start)

    moved = run_with_client(body)
    click.echo(json.dumps(_group(moved)))
