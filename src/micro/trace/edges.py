"""The spans of the platform's doors: the gateway's request and the proxy's forward.

Both read the caller's ``traceparent`` (an HTTP header, native or gRPC metadata: all end
up as call metadata), record a span in the namespace the call is made in, and send their
own span on as the callee's parent. A door is where traces start, so it decides whether
one is sampled: a trace it does not sample goes on marked so (``traceparent`` with the
sampled flag off), and the services after it record nothing of it either. Failures to find a service, when nothing upstream
traces the call, are not kept: anyone can name any service in any namespace, and such
spans would only crowd out real traces.
"""

from __future__ import annotations

from micro.trace.context import (
    TRACEPARENT,
    Parent,
    format_parent,
    new_span_id,
    new_trace_id,
    parse,
)
from micro.trace.middleware import NO_ATTRIBUTES, status_of
from micro.trace.record import CLIENT, SERVER, recorder
from micro.trace.span import Span, start
from micro.wire.frames import RequestHeader

__all__ = ["forward_failed", "forward_span", "request_span"]


def forward_span(header: RequestHeader) -> Span | None:
    """The proxy's span of a call it forwards; the call carries it on."""
    md = header.metadata
    return _door_span(
        f"{header.service} {header.endpoint}",
        CLIENT,
        "proxy",
        md,
        md.get("micro-namespace") or "micro",
    )


def request_span(name: str, metadata: dict[str, str], namespace: str) -> Span | None:
    """The gateway's span of an HTTP request; its call carries it on."""
    return _door_span(name[:200], SERVER, "api", metadata, namespace)


def _door_span(
    name: str, kind: int, service: str, metadata: dict[str, str], namespace: str
) -> Span | None:
    raw = metadata.get(TRACEPARENT)
    if raw is None:  # where most traces start: start() and _carry() inlined, for the hot path
        rec = recorder
        if rec.enabled and rec.sinks and rec.sample():
            span = Span(rec, name, kind, service, namespace, new_trace_id(), "", NO_ATTRIBUTES)
            metadata[TRACEPARENT] = f"00-{span.trace_id}-{span.span_id}-01"
            return span
        metadata[TRACEPARENT] = format_parent(new_trace_id(), new_span_id(), False)
        return None
    parent = parse(raw)
    made = start(name, kind, parent=parent, service=service, namespace=namespace)
    _carry(metadata, made, parent)
    return made


def _carry(metadata: dict[str, str], span: Span | None, parent: Parent | None) -> None:
    """Send ``span`` on as the callee's parent; a trace started here but not sampled goes
    on marked unsampled, and a caller's malformed ``traceparent`` does not go on at all."""
    if span is not None:
        metadata[TRACEPARENT] = span.traceparent
    elif parent is None:
        metadata[TRACEPARENT] = format_parent(new_trace_id(), new_span_id(), False)


def forward_failed(span: Span, exc: BaseException) -> None:
    """End ``span`` as failed with ``exc`` (unless it is a root span of a service not found)."""
    status, error = status_of(exc)
    if status == 404 and not span.parent_id:
        return
    span.end(status, error)
