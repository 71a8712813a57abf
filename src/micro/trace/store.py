"""Where ``micro server`` keeps recent traces: in memory, per namespace, within bounds.

Traces are keyed by (namespace, trace id): spans recorded in one namespace never show in
another's view of "the same" trace id, so a caller who sends another tenant's trace id as
its ``traceparent`` only adds spans to a trace of its own namespace.

Every span every service records comes here, and few are ever looked at, so spans are
kept as the batches they arrive in (a batch costs about the same whatever its size) and
put together into traces only when a namespace's traces are read: each span is indexed
once, by the first read after it came, and spans nobody reads are never indexed. The
checks of a caller's ids happen then too (spans with malformed ids are never shown).

Bounds (settings): about ``max_traces`` traces per namespace (a noisy tenant lets go of
its own oldest batches first; traces are counted per batch, so a trace whose spans came in
two batches counts twice and the bound errs on the side of keeping fewer), ``max_bytes``
for all of them (then the oldest batches of any namespace go), and :data:`MAX_SPANS`
spans per trace (more are not shown). A batch's size is its spans' msgpack encoding plus
a fixed cost per span. Restarting the server forgets them: this is a window on recent
traffic; the OTLP export (``MICRO_OTLP_ENDPOINT``) is for keeping more.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Final

import msgspec

from micro.trace.proto import Summary
from micro.trace.record import CLIENT, SpanData, by_namespace, valid

__all__ = ["MAX_SPANS", "TraceStore", "span_size"]

MAX_SPANS: Final = 1000
_SPAN_COST: Final = 160
"""What a span costs besides its encoding: the object and its slot in a trace."""

_encode = msgspec.msgpack.Encoder().encode


def batch_size(spans: list[SpanData]) -> int:
    """The bytes a batch of spans is charged."""
    return _SPAN_COST * len(spans) + len(_encode(spans))


def span_size(span: SpanData) -> int:
    """The bytes a span arriving alone is charged."""
    return batch_size([span])


class _Batch:
    __slots__ = ("gone", "size", "spans", "traces")

    def __init__(self, spans: list[SpanData], size: int, traces: int) -> None:
        self.spans = spans
        self.size = size
        self.traces = traces
        self.gone = False


class _Namespace:
    """One namespace's batches, oldest first, and the traces made of those read so far."""

    __slots__ = ("batches", "fresh", "index", "name", "traces")

    def __init__(self, name: str) -> None:
        self.name = name
        self.batches: deque[_Batch] = deque()
        self.traces = 0
        """Traces in :attr:`batches`, counted per batch."""
        self.fresh = 0
        """How many of the newest batches are not in :attr:`index` yet."""
        self.index: dict[str, list[SpanData]] = {}
        """Trace id -> its spans in arrival order, first seen first."""

    def catch_up(self) -> dict[str, list[SpanData]]:
        """Index the batches that came since the last read; the index."""
        if self.fresh:
            index = self.index
            name = self.name
            for batch in islice(self.batches, len(self.batches) - self.fresh, None):
                for span in batch.spans:
                    if not valid(span):  # a caller's malformed ids: never shown
                        continue
                    span.namespace = name
                    spans = index.get(span.trace_id)
                    if spans is None:
                        index[span.trace_id] = [span]
                    elif len(spans) < MAX_SPANS:
                        spans.append(span)
            self.fresh = 0
        return self.index

    def pop_oldest(self) -> _Batch:
        """Let the oldest batch go (and its spans out of the index, where they are first
        of their traces: batches are indexed and let go in arrival order)."""
        batch = self.batches.popleft()
        batch.gone = True
        self.traces -= batch.traces
        if len(self.batches) < self.fresh:
            self.fresh -= 1  # never indexed
            return batch
        index = self.index
        for span in batch.spans:
            spans = index.get(span.trace_id)
            if spans and spans[0] is span:
                del spans[0]
                if not spans:
                    del index[span.trace_id]
        return batch


class TraceStore:
    """Recent traces by namespace; the ``trace`` block's backend."""

    name = "memory"

    def __init__(self, *, max_traces: int = 1000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        self.size = 0
        self._namespaces: dict[str, _Namespace] = {}
        self._order: deque[tuple[_Namespace, _Batch]] = deque()
        """Every namespace's batches, oldest first (those already let go are skipped)."""
        self._gone = 0
        """Entries of :attr:`_order` let go by their namespace's bound, not yet removed."""

    def __len__(self) -> int:
        """Traces kept (indexes every namespace: for tests and the odd look)."""
        return sum(len(ns.catch_up()) for ns in self._namespaces.values())

    def add(self, spans: list[SpanData], namespace: str | None = None) -> None:
        """Keep ``spans`` in ``namespace`` (each span's own namespace when ``None``: spans
        the server records itself, in the namespace its door checked)."""
        if not spans:
            return
        if namespace is not None:
            self._keep(namespace, spans)
            return
        for name, group in by_namespace(spans).items():
            self._keep(name, group)

    def _keep(self, name: str, spans: list[SpanData]) -> None:
        ns = self._namespaces.get(name)
        if ns is None:
            ns = self._namespaces[name] = _Namespace(name)
        batch = _Batch(spans, batch_size(spans), len({span.trace_id for span in spans}))
        ns.batches.append(batch)
        ns.fresh += 1
        ns.traces += batch.traces
        self._order.append((ns, batch))
        self.size += batch.size
        while ns.traces > self.max_traces and len(ns.batches) > 1:
            self.size -= ns.pop_oldest().size
            self._gone += 1
        order = self._order
        while self.size > self.max_bytes and order:
            owner, oldest = order.popleft()
            if oldest.gone:
                self._gone -= 1
                continue
            self.size -= owner.pop_oldest().size
            if not owner.batches:
                del self._namespaces[owner.name]
        while order and order[0][1].gone:
            order.popleft()
            self._gone -= 1
        if self._gone > 64 and self._gone > len(order) // 2:
            # A quiet namespace's old batch at the front keeps a busy one's let-go batches
            # behind it: drop them all at once (amortised, so the order stays bounded).
            self._order = deque(entry for entry in order if not entry[1].gone)
            self._gone = 0

    def get(self, namespace: str, trace_id: str) -> list[SpanData]:
        """The spans of one trace of ``namespace``, earliest first ([] when unknown)."""
        ns = self._namespaces.get(namespace)
        spans = ns.catch_up().get(trace_id) if ns is not None else None
        return sorted(spans, key=lambda s: s.start) if spans else []

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
        ns = self._namespaces.get(namespace)
        if ns is None:
            return found
        for trace_id, spans in reversed(ns.catch_up().items()):
            summary = summarize(trace_id, spans)
            if _matches(summary, spans, service, endpoint, status, min_duration_ms):
                found.append(summary)
                if len(found) >= limit:
                    break
        return found

    async def close(self) -> None:
        """Forget everything (the block's backend interface)."""
        self._namespaces.clear()
        self._order.clear()
        self._gone = 0
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
