"""A trace laid out for people: spans as a tree (children under their parent, earliest
first) with where each sits on the trace's time line, for ``micro trace ID`` and the
dashboard's waterfall."""

from __future__ import annotations

from dataclasses import dataclass

from micro.trace.record import CLIENT, CONSUMER, INTERNAL, PRODUCER, SERVER, SpanData

__all__ = ["KINDS", "Row", "layout", "status_text"]

KINDS: dict[int, str] = {
    INTERNAL: "internal",
    SERVER: "server",
    CLIENT: "client",
    PRODUCER: "producer",
    CONSUMER: "consumer",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One span of the tree: its depth, and its start and length in percent of the trace."""

    span: SpanData
    depth: int
    offset: float
    width: float

    @property
    def duration_ms(self) -> float:
        """The span's length in milliseconds."""
        return (self.span.end - self.span.start) / 1e6


def status_text(span: SpanData) -> str:
    """``ok``, or the status code and error detail."""
    if not span.failed:
        return "ok" if not span.status else str(span.status)
    return f"{span.status} {span.error}".strip() if span.status else span.error


def layout(spans: list[SpanData]) -> list[Row]:
    """The spans depth first, each parent before its children (by start time); spans
    whose parent is not in the trace are roots."""
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children: dict[str, list[SpanData]] = {}
    roots: list[SpanData] = []
    for span in sorted(spans, key=lambda s: s.start):
        if span.parent_id and span.parent_id in ids and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    start = min(s.start for s in spans)
    total = max(max(s.end for s in spans) - start, 1)
    rows: list[Row] = []
    seen: set[str] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:  # a malformed trace (a cycle): shown once
            continue
        seen.add(span.span_id)
        offset = (span.start - start) * 100 / total
        width = max((span.end - span.start) * 100 / total, 0.5)
        rows.append(Row(span, depth, round(offset, 2), round(min(width, 100 - offset), 2)))
        for child in reversed(children.get(span.span_id, [])):
            stack.append((child, depth + 1))
    return rows
