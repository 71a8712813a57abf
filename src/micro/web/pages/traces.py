"""Traces: the namespace's recent traces, searchable, and a waterfall per trace.

Both go through the ``trace`` service as the logged-in account (``Trace.List``,
``Trace.Read``), so the dashboard shows exactly what ``micro trace`` shows that account:
its namespace's traces only. The waterfall is server-rendered: each span's bar is an SVG
rectangle whose position is an attribute, not a style (the pages' CSP allows no inline
style).
"""

from __future__ import annotations

import datetime
import re
from typing import Final

import msgspec
from starlette.responses import Response
from starlette.routing import Route

from micro import errors
from micro.trace.proto import Summary
from micro.trace.record import SpanData
from micro.trace.view import KINDS, layout, status_text
from micro.web.app import Context, page

__all__ = ["ROUTES"]

_ID: Final = re.compile(r"[0-9a-f]{32}")
_SHOWN: Final = 50


def _when(ns: int) -> str:
    at = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if 0 <= value < 1e9 else 0.0


async def traces(context: Context) -> Response:
    """``/traces``: recent traces, filtered by ``service``, ``endpoint``, ``status`` and
    ``min`` (milliseconds)."""
    query = context.request.query_params
    filters = {
        "service": query.get("service", "").strip()[:200],
        "endpoint": query.get("endpoint", "").strip()[:200],
        "status": query.get("status", "").strip()[:10],
    }
    least = _number(query.get("min", ""))
    answer = await context.caller.call(
        "trace", "Trace.List", {**filters, "min_duration_ms": least, "limit": _SHOWN}
    )
    found = msgspec.convert(answer.get("traces") or [], list[Summary])
    return context.render(
        "traces.html",
        traces=[(t, _when(t.start)) for t in found],
        filters=filters,
        least=query.get("min", "")[:20],
    )


async def trace(context: Context) -> Response:
    """``/traces/{id}``: one trace as a waterfall."""
    trace_id = context.request.path_params["trace_id"].lower()
    if not _ID.fullmatch(trace_id):
        raise errors.BadRequest("web", "a trace id is 32 hex digits")
    answer = await context.caller.call("trace", "Trace.Read", {"id": trace_id})
    spans = msgspec.convert(answer.get("spans") or [], list[SpanData])
    rows = layout(spans)
    start = min((s.start for s in spans), default=0)
    end = max((s.end for s in spans), default=0)
    return context.render(
        "trace.html",
        trace_id=trace_id,
        rows=[(r, KINDS.get(r.span.kind, ""), status_text(r.span)) for r in rows],
        started=_when(start) if spans else "",
        duration_ms=(end - start) / 1e6,
    )


ROUTES = [
    Route("/traces", page(traces)),
    Route("/traces/{trace_id}", page(trace)),
]
