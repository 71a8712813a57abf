"""Tracing of calls: an observer for servers, a middleware for clients, installed by default.

- :class:`ServerTracing` makes a ``SERVER`` span of each call a service serves, a child of
  the caller's ``traceparent``, and makes it the current span while the handler runs, so
  the calls it makes, its logs, the events it publishes are children of it.
- :class:`ClientTracing` makes a ``CLIENT`` span of each call made, and sends it on as the
  callee's ``traceparent``. A call made outside any trace starts one (when the sampler says
  so), except calls to the platform's own services (registry renewals, token exchanges,
  the spans' own export): those are traced only as parts of a trace.

Both are written for the hot path: a trace that is not sampled costs a dict lookup and a
branch; a sampled call costs one id, two clock reads and one small record appended to a
list (the recorder exports in batches, off the call's path).
"""

from __future__ import annotations

from time import time_ns
from typing import Any, Final

from micro import errors
from micro.rpc.context import Call
from micro.rpc.context import _current as _serving
from micro.rpc.types import ClientCall, Next
from micro.trace.context import (
    _ODD,
    SERVING,
    TRACEPARENT,
    Active,
    _active,
    _bits,
    format_parent,
    new_trace_id,
    parse,
)
from micro.trace.record import BATCH, CLIENT, SERVER, Recorder, SpanData, recorder

__all__ = ["NO_ATTRIBUTES", "ClientTracing", "ServerTracing", "status_of"]

NO_ATTRIBUTES: Final[dict[str, str]] = {}
"""Shared by spans with no attributes (never mutated)."""

_UNTRACED: Final = frozenset({"trace"})
"""Services whose calls are never traced: the export of spans itself."""


def status_of(exc: BaseException) -> tuple[int, str]:
    """A span's (status, error) for a call that raised ``exc``."""
    if isinstance(exc, errors.MicroError):
        return exc.code, exc.detail[:500]
    if isinstance(exc, TimeoutError):
        return 408, "deadline exceeded"
    return 500, f"{type(exc).__name__}: {exc}"[:500]


class ServerTracing:
    """Server observer: a ``SERVER`` span per call served by ``service``."""

    __slots__ = ("recorder", "service")

    def __init__(self, service: str, rec: Recorder | None = None) -> None:
        self.service = service
        self.recorder = rec or recorder

    def begin(self, call: Call) -> SpanData | None:
        """The span, made now and finished by :meth:`end`; ``None`` when not recorded."""
        rec = self.recorder
        if not rec.enabled:
            return None
        md = call.metadata
        raw = md.get(TRACEPARENT)
        # parse(), inlined and checking the shape only: the digits of the ids are checked
        # where spans are read (record.valid), off the call's path.
        if raw is not None and len(raw) == 55 and raw[35] == "-" and raw[52] == "-":
            if raw[54] not in _ODD or raw[:3] != "00-":
                return None  # unsampled (or a version we do not speak)
            trace_id, parent_id = raw[3:35], raw[36:52]
        else:
            if not rec.sample():
                return None
            trace_id, parent_id = new_trace_id(), ""
        span_id = (_bits(64) or 1).to_bytes(8, "little").hex()  # new_span_id(), inlined
        # The span is current for the handler: left on the call, which the handler's
        # client calls, logs and spans find (a context variable costs ten times more).
        call.values[SERVING] = (trace_id, span_id, True)
        return SpanData(
            trace_id,
            span_id,
            parent_id,
            call.endpoint,
            SERVER,
            time_ns(),
            0,
            self.service,
            md.get("micro-namespace") or "micro",
            0,
            "",
            NO_ATTRIBUTES,
        )

    def end(self, call: Call, begun: SpanData | None, error: BaseException | None) -> None:
        """Record the span (when :meth:`begin` began one and spans are kept)."""
        if begun is None:
            return
        begun.end = time_ns()
        if error is not None:
            begun.status, begun.error = status_of(error)
        self.recorder.add(begun)


class ClientTracing:
    """Client middleware: a ``CLIENT`` span per call ``service`` makes (``""``: a script)."""

    __slots__ = ("core", "recorder", "service")

    def __init__(self, service: str = "", rec: Recorder | None = None) -> None:
        from micro.rpc.client import CORE_SERVICES

        self.service = service
        self.recorder = rec or recorder
        self.core = CORE_SERVICES

    async def __call__(self, call: ClientCall, nxt: Next) -> Any:
        rec = self.recorder
        if not rec.enabled or call.service in _UNTRACED:
            return await nxt(call)
        md = call.metadata
        parent: Active | None = _active.get()
        if parent is None:
            serving = _serving.get()
            if serving is not None:
                parent = serving.values.get(SERVING)
                if parent is None:
                    # Served without a span of ours: the call's traceparent (copied onto
                    # this one already) says what to do.
                    parent = parse(md.get(TRACEPARENT))
                    if parent is None:
                        return await nxt(call)
        if parent is None:
            # A root here only where spans are kept (not the CLI), and never for the
            # platform's own services (registry renewals, token exchanges).
            if call.service in self.core or not rec.sinks or not rec.sample():
                return await nxt(call)
            trace_id, parent_id = new_trace_id(), ""
        elif parent[2]:  # (indexed: the server's middleware sets a plain tuple)
            trace_id, parent_id = parent[0], parent[1]
        else:
            md[TRACEPARENT] = format_parent(parent[0], parent[1], False)
            return await nxt(call)
        span_id = (_bits(64) or 1).to_bytes(8, "little").hex()  # new_span_id(), inlined
        md[TRACEPARENT] = f"00-{trace_id}-{span_id}-01"
        status = 0
        error = ""
        start = time_ns()
        try:
            return await nxt(call)
        except BaseException as exc:
            status, error = status_of(exc)
            raise
        finally:
            if rec.sinks:
                spans = rec.spans
                spans.append(
                    SpanData(
                        trace_id,
                        span_id,
                        parent_id,
                        f"{call.service} {call.endpoint}",
                        CLIENT,
                        start,
                        time_ns(),
                        self.service,
                        md.get("micro-namespace") or "micro",
                        status,
                        error,
                        NO_ATTRIBUTES,
                    )
                )
                if len(spans) >= BATCH:
                    rec.full()
