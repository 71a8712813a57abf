"""Where ``micro server`` keeps recent traces: in memory, per namespace, within bounds.

Traces are keyed by (namespace, trace id): spans recorded in one namespace never show in
another's view of "the same" trace id, so a caller who sends another tenant's trace id as
its ``traceparent`` only adds spans to a trace of its own namespace.

Bounds (settings): at most ``max_traces`` traces per namespace (a noisy tenant evicts its
own oldest traces first), ``max_bytes`` for all of them (then the oldest traces of any
namespace go), and :data:`MAX_SPANS` spans per trace (more are counted, not kept). Sizes
are estimated from the spans' text. Restarting the server forgets them: this is a window
on recent traffic; the OTLP export (``MICRO_OTLP_ENDPOINT``) is for keeping more.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from micro.trace.proto import Summary
from micro.trace.record import CLIENT, SpanData, valid

__all__ = ["MAX_SPANS", "TraceStore", "span_size"]

MAX_SPANS: Final = 1000
_SPAN_COST: Final = 160
"""What a span costs besides its text: the object and its slot in the trace."""


def span_size(span: SpanData) -> int:
    """The bytes a span is charged."""
    size = _SPAN_COST + len(span.name) + len(span.service) + len(span.error)
    for key, value in span.attributes.items():
        size += len(key) + len(value) + 16
    return size


@dataclass(slots=True)
class _Trace:
    spans: list[SpanData] = field(default_factory=list)
    size: int = 0
    dropped: int = 0


class TraceStore:
    """Recent traces by namespace; the ``trace`` block's backend."""

    name = "memory"

    def __init__(self, *, max_traces: int = 1000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        self.size = 0
        self._traces: OrderedDict[tuple[str, str], _Trace] = OrderedDict()
        self._per_namespace: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._traces)

    def add(
        self, spans: list[SpanData], namespace: str | None = None, *, trusted: bool = False
    ) -> None:
        """Keep ``spans`` in ``namespace`` (each span's own namespace when ``None``: spans
        the server records itself, in the namespace its door checked). Spans whose ids
        are malformed are dropped, unless ``trusted`` (the server's own, whose ids it made
        or parsed strictly)."""
        for span in spans:
            if not trusted and not valid(span):  # a caller's malformed ids: not kept
                continue
            ns = namespace or span.namespace
            if namespace is not None:
                span.namespace = namespace
            key = (ns, span.trace_id)
            trace = self._traces.get(key)
            if trace is None:
                trace = self._traces[key] = _Trace()
                order = self._per_namespace.setdefault(ns, OrderedDict())
                order[span.trace_id] = None
                if len(order) > self.max_traces:
                    self._evict((ns, next(iter(order))))
            if len(trace.spans) >= MAX_SPANS:
                trace.dropped += 1
                continue
            cost = span_size(span)
            trace.spans.append(span)
            trace.size += cost
            self.size += cost
        while self.size > self.max_bytes and self._traces:
            self._evict(next(iter(self._traces)))

    def _evict(self, key: tuple[str, str]) -> None:
        trace = self._traces.pop(key, None)
        if trace is None:
            return
        self.size -= trace.size
        order = self._per_namespace.get(key[0])
        if order is not None:
            order.pop(key[1], None)
            if not order:
                del self._per_namespace[key[0]]

    def get(self, namespace: str, trace_id: str) -> list[SpanData]:
        """The spans of one trace of ``namespace``, earliest first ([] when unknown)."""
        trace = self._traces.get((namespace, trace_id))
        if trace is None:
            return []
        return sorted(trace.spans, key=lambda s: s.start)

    def search(
        self,
        namespace: str,
        *,
        service: str = "",
        endpoint: str = "",
        status: str = "",
        min_duration_ms: float = 0.0,
        limit: int = 50,
    ) -> list[Summary]:
        """Summaries of ``namespace``'s traces that match every filter given, newest first."""
        found: list[Summary] = []
        order = self._per_namespace.get(namespace)
        if order is None:
            return found
        for trace_id in reversed(order):
            trace = self._traces.get((namespace, trace_id))
            if trace is None or not trace.spans:
                continue
            summary = summarize(trace_id, trace.spans)
            if _matches(summary, trace.spans, service, endpoint, status, min_duration_ms):
                found.append(summary)
                if len(found) >= limit:
                    break
        return found

    async def close(self) -> None:
        """Forget everything (the block's backend interface)."""
        self._traces.clear()
        self._per_namespace.clear()
        self.size = 0


def summarize(trace_id: str, spans: list[SpanData]) -> Summary:
    """A trace's summary: its root (the earliest span whose parent is not in it)."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id or s.parent_id not in ids]
    root = min(roots or spans, key=lambda s: s.start)
    start = min(s.start for s in spans)
    end = max(s.end for s in spans)
    services = sorted({s.service for s in spans if s.service})
    return Summary(
        id=trace_id,
        name=root.name,
        service=root.service,
        start=start,
        duration_ms=(end - start) / 1e6,
        spans=len(spans),
        services=services,
        status=root.status,
        error=any(s.failed for s in spans),
    )


def _callee(span: SpanData) -> str:
    return span.name.partition(" ")[0] if span.kind == CLIENT else ""


def _matches(
    summary: Summary,
    spans: list[SpanData],
    service: str,
    endpoint: str,
    status: str,
    min_duration_ms: float,
) -> bool:
    if min_duration_ms and summary.duration_ms < min_duration_ms:
        return False
    if service and not any(s.service == service or _callee(s) == service for s in spans):
        return False
    if endpoint and not any(endpoint.lower() in s.name.lower() for s in spans):
        return False
    if status == "ok":
        return not summary.error
    if status == "error":
        return summary.error
    if status:
        return any(str(s.status) == status for s in spans)
    return True
