"""``micro trace``: recent traces of the namespace, or one trace as a tree.

micro trace                       # recent traces, newest first
micro trace --service billing --status error --min-duration 50
micro trace 4bf92f3577b34da6a3ce929d0e0e4736
micro trace 4bf9... -o json       # the spans, one JSON object a line
"""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING

import click

from micro.cli._client import Session, run_with_client
from micro.cli._format import table
from micro.cli.errors import CliError
from micro.cli.main import MicroCommand

if TYPE_CHECKING:
    from micro.trace.record import SpanData

__all__ = ["trace"]

_ID = re.compile(r"[0-9a-f]{32}")


def _when(ns: int) -> str:
    at = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S")


@click.command("trace", cls=MicroCommand)
@click.argument("trace_id", required=False, default="")
@click.option("--service", default="", help="Only traces through this service.")
@click.option("--endpoint", default="", help="Only traces with a span naming this endpoint.")
@click.option("--status", default="", help="ok, error, or an HTTP status code.")
@click.option(
    "--min-duration",
    type=click.FloatRange(0),
    default=0.0,
    help="Only traces at least this long (ms).",
)
@click.option("-l", "--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def trace(
    trace_id: str,
    service: str,
    endpoint: str,
    status: str,
    min_duration: float,
    limit: int,
    output: str,
) -> None:
    """Recent traces of the namespace, or the trace TRACE_ID as a tree of spans."""
    wanted = trace_id.strip().lower()
    if wanted and not _ID.fullmatch(wanted):
        raise CliError(f"Invalid trace id {trace_id!r}: 32 hex digits")

    async def body(session: Session) -> None:
        import msgspec

        from micro.trace.client import RPCTraces
        from micro.trace.view import KINDS, layout, status_text

        traces = RPCTraces(session.client)
        if wanted:
            spans = await traces.read(wanted)
            if output == "json":
                for span in spans:
                    click.echo(_span_json(span))
                return
            rows = [["SPAN", "SERVICE", "KIND", "START", "DURATION", "STATUS"]]
            first = min((s.start for s in spans), default=0)
            for row in layout(spans):
                s = row.span
                rows.append(
                    [
                        "  " * row.depth + s.name,
                        s.service,
                        KINDS.get(s.kind, str(s.kind)),
                        f"+{(s.start - first) / 1e6:.2f}ms",
                        f"{row.duration_ms:.2f}ms",
                        status_text(s),
                    ]
                )
            for line in table(rows):
                click.echo(line)
            return
        found = await traces.list(
            service=service,
            endpoint=endpoint,
            status=status,
            min_duration_ms=min_duration,
            limit=limit,
        )
        if output == "json":
            for summary in found:
                click.echo(msgspec.json.encode(summary).decode())
            return
        rows = [["ID", "STARTED", "ROOT", "SERVICES", "SPANS", "DURATION", "STATUS"]]
        for t in found:
            rows.append(
                [
                    t.id,
                    _when(t.start),
                    f"{t.service} {t.name}".strip(),
                    ",".join(t.services),
                    str(t.spans),
                    f"{t.duration_ms:.2f}ms",
                    "error" if t.error else "ok",
                ]
            )
        for line in table(rows):
            click.echo(line)

    run_with_client(body)


def _span_json(span: SpanData) -> str:
    """A span as a JSON object with named fields (spans travel as arrays)."""
    import msgspec

    fields = {name: getattr(span, name) for name in span.__struct_fields__}
    return msgspec.json.encode(fields).decode()
