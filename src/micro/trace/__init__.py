"""Tracing: a span for every hop of a call, W3C ``traceparent`` between them.

Every service traces by default (its server and client middleware), as do the gateway,
the proxy, broker messages and events; ``micro server`` keeps recent traces
(``micro trace``, the dashboard's Traces page) and, with ``MICRO_OTLP_ENDPOINT``, every
process also exports to an OpenTelemetry collector. ``MICRO_TRACE_SAMPLE`` sets the share
of traces recorded (0: off). In code::

    with micro.trace.span("price the basket"):
        ...
    ids = micro.trace.current_ids()      # (trace_id, span_id) or None; logs carry them

See ``docs/guides/observability.md``.
"""

from micro.trace.context import (
    TRACEPARENT,
    Parent,
    current,
    current_ids,
    format_parent,
    parse,
)
from micro.trace.middleware import ClientTracing, ServerTracing
from micro.trace.record import (
    CLIENT,
    CONSUMER,
    INTERNAL,
    PRODUCER,
    SERVER,
    Recorder,
    SpanData,
    recorder,
)
from micro.trace.span import Span, span, start

__all__ = [
    "CLIENT",
    "CONSUMER",
    "INTERNAL",
    "PRODUCER",
    "SERVER",
    "TRACEPARENT",
    "ClientTracing",
    "Parent",
    "Recorder",
    "ServerTracing",
    "Span",
    "SpanData",
    "current",
    "current_ids",
    "format_parent",
    "parse",
    "recorder",
    "span",
    "start",
]
