"""Finished spans, and the recorder that batches them to where traces are kept.

A span is recorded once, when it ends, as one small :class:`SpanData` (the fields
OpenTelemetry's span has that a waterfall needs). The hot path only appends it to a list;
a background task hands the batch to the recorder's sinks about every
:data:`FLUSH_INTERVAL` seconds, or sooner once :data:`BATCH` spans wait: the server's own
trace store (in ``micro server``), the server's ``trace`` service (in a service, over the
native wire), an OTLP/HTTP collector (``MICRO_OTLP_ENDPOINT``). Spans a sink cannot take
are dropped and counted, never retried without bound: tracing must not take a process down
with it.

Sampling (``MICRO_TRACE_SAMPLE``, 0 to 1) is decided once, where a trace starts; every hop
after follows the caller's ``sampled`` flag, so a trace is whole or absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

__all__ = [
    "BATCH",
    "CLIENT",
    "CONSUMER",
    "FLUSH_INTERVAL",
    "INTERNAL",
    "PRODUCER",
    "SERVER",
    "Recorder",
    "Sink",
    "SpanData",
    "by_namespace",
    "recorder",
    "valid",
]

log = logging.getLogger("micro.trace")

INTERNAL: Final = 1
SERVER: Final = 2
CLIENT: Final = 3
PRODUCER: Final = 4
CONSUMER: Final = 5
"""Span kinds, numbered as OTLP numbers them (``SPAN_KIND_*``)."""

BATCH: Final = 512
FLUSH_INTERVAL: Final = 1.0
MAX_PENDING: Final = 20_000
"""Spans waiting for a sink beyond this are dropped (a sink that is down)."""


class SpanData(msgspec.Struct, array_like=True, gc=False):
    """One finished span; ``status`` is the call's HTTP-style code (0 when it succeeded
    with no code, as events and broker messages do), ``error`` its detail."""

    trace_id: str
    span_id: str
    parent_id: str
    """``""`` for a trace's root span."""
    name: str
    kind: int
    start: int
    """Unix time, nanoseconds."""
    end: int
    service: str
    namespace: str
    status: int = 0
    error: str = ""
    attributes: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True for an error status (a code of 400 and above, or an error detail)."""
        return self.status >= 400 or bool(self.error)


_HEX: Final = re.compile(r"[0-9a-f]*").fullmatch
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16


def valid(span: SpanData) -> bool:
    """Whether the span's ids are well formed (lower-case hex, not all zeros; the parent
    empty or a span id). The hot path checks a caller's ``traceparent`` by its shape only;
    this is the whole check, made where spans are kept or exported (the lengths first,
    then one match of the three ids together: a third of three matches' cost)."""
    trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_id
    return (
        len(trace_id) == 32
        and len(span_id) == 16
        and (not parent_id or len(parent_id) == 16)
        and _HEX(trace_id + span_id + parent_id) is not None
        and trace_id != _ZERO_TRACE
        and span_id != _ZERO_SPAN
    )


def by_namespace(spans: list[SpanData]) -> dict[str, list[SpanData]]:
    """``spans`` grouped by the namespace each was recorded in (the list itself, not a copy,
    when they share one: a service's usual batch)."""
    if not spans:
        return {}
    first = spans[0].namespace
    if all(span.namespace == first for span in spans):
        return {first: spans}
    groups: dict[str, list[SpanData]] = {}
    for span in spans:
        groups.setdefault(span.namespace, []).append(span)
    return groups


Sink = Callable[[list[SpanData]], Awaitable[None]]
"""Takes one batch of finished spans (raises to say it could not)."""


class Recorder:
    """Buffers finished spans and flushes them to its sinks; one per process
    (:data:`recorder`), configured by whatever runs there (a service, the server)."""

    def __init__(self) -> None:
        self.spans: list[SpanData] = []
        """Finished spans not flushed yet (the hot path appends here)."""
        self.sinks: list[Sink] = []
        """Where flushed spans go: the first sink attached under each name."""
        self._attached: dict[str, list[tuple[object, Sink]]] = {}
        self.rate = 1.0
        self.enabled = True
        self.dropped = 0
        self.service = ""
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._random = random.random

    def configure(self, *, service: str | None = None, sample: float | None = None) -> None:
        """Name the process's service and set the sampling rate (0 turns tracing off)."""
        if service is not None:
            self.service = service
        if sample is not None:
            self.rate = min(max(sample, 0.0), 1.0)
            self.enabled = self.rate > 0.0

    def attach(self, name: str, sink: Sink, owner: object) -> None:
        """Send spans to ``sink`` under ``name``. Several owners of one process (services
        started in one test process) may attach a sink of the same name: the first one
        is used, the next takes over when it detaches."""
        self._attached.setdefault(name, []).append((owner, sink))
        self._rebuild()

    def detach(self, name: str, owner: object) -> None:
        """Stop using ``owner``'s sink of ``name``."""
        kept = [(o, s) for o, s in self._attached.get(name, []) if o is not owner]
        if kept:
            self._attached[name] = kept
        else:
            self._attached.pop(name, None)
        self._rebuild()

    def _rebuild(self) -> None:
        self.sinks = [entries[0][1] for entries in self._attached.values() if entries]

    def sample(self) -> bool:
        """Whether a trace starting here is sampled."""
        rate = self.rate
        return rate >= 1.0 or (rate > 0.0 and self._random() < rate)

    def add(self, span: SpanData) -> None:
        """Record a finished span (called by the middleware; cheap). With no sink (a
        script, the CLI) spans are only propagated, not kept."""
        if not self.sinks:
            return
        spans = self.spans
        spans.append(span)
        if len(spans) >= BATCH:
            self.full()

    def full(self) -> None:
        """A batch is waiting: flush it now (called when the buffer reaches :data:`BATCH`)."""
        if self._wake is not None:
            self._wake.set()
        if len(self.spans) > MAX_PENDING:
            # Nobody flushes fast enough (or at all): keep the newest half, so that this
            # costs once per MAX_PENDING // 2 spans, not on every span.
            excess = len(self.spans) - MAX_PENDING // 2
            self.dropped += excess
            del self.spans[:excess]

    def start(self) -> None:
        """Flush in the background on this loop (idempotent)."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Flush what is left and stop the background task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_INTERVAL):
                    await wake.wait()
            wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Hand what is buffered to every sink now."""
        batch = self.spans
        if not batch:
            return
        self.spans = []
        if not self.sinks:
            self._drop(batch, "no sink")
            return
        for sink in list(self.sinks):
            try:
                await sink(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sink that is down loses its batch, nothing more
                self._drop(batch, f"{type(exc).__name__}: {exc}")

    def _drop(self, batch: list[SpanData], why: str) -> None:
        self.dropped += len(batch)
        log.debug("dropped %d spans: %s", len(batch), why)


recorder = Recorder()
"""This process's recorder."""
