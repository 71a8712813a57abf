"""Export to an OTLP/HTTP collector (Jaeger, Tempo, an OpenTelemetry Collector...).

Spans are turned into OpenTelemetry SDK ``ReadableSpan`` objects in batches (off the
calls' path) and sent with the official ``opentelemetry-exporter-otlp-proto-http``
exporter, in a thread since it blocks. Each span's resource says its ``service.name`` and
``micro.namespace``. ``MICRO_OTLP_ENDPOINT`` is the collector's base address
(``http://collector:4318``; ``/v1/traces`` is added unless the address has a path), and
the exporter's own ``OTEL_EXPORTER_OTLP_*`` variables (headers, compression) apply.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from micro.trace.record import Sink, SpanData, valid

__all__ = ["otlp_sink", "to_readable"]


def traces_url(endpoint: str) -> str:
    """The collector's traces address for ``MICRO_OTLP_ENDPOINT``."""
    endpoint = endpoint.rstrip("/")
    return endpoint if urlsplit(endpoint).path else f"{endpoint}/v1/traces"


def to_readable(spans: list[SpanData]) -> list[Any]:
    """The spans as OpenTelemetry SDK ``ReadableSpan`` objects."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    scope = InstrumentationScope("micro")
    resources: dict[tuple[str, str], Resource] = {}
    kinds = list(SpanKind)
    out: list[Any] = []
    for span in spans:
        if not valid(span):
            continue
        key = (span.service, span.namespace)
        resource = resources.get(key)
        if resource is None:
            resource = resources[key] = Resource.create(
                {"service.name": span.service or "micro", "micro.namespace": span.namespace}
            )
        trace_id = int(span.trace_id, 16)
        context = SpanContext(trace_id, int(span.span_id, 16), False, TraceFlags(1))
        parent = (
            SpanContext(trace_id, int(span.parent_id, 16), True, TraceFlags(1))
            if span.parent_id
            else None
        )
        attributes: dict[str, Any] = dict(span.attributes)
        if span.status:
            attributes["micro.status_code"] = span.status
        status = Status(StatusCode.ERROR, span.error or None) if span.failed else Status()
        out.append(
            ReadableSpan(
                name=span.name,
                context=context,
                parent=parent,
                resource=resource,
                attributes=attributes,
                kind=kinds[span.kind - 1] if 1 <= span.kind <= len(kinds) else SpanKind.INTERNAL,
                status=status,
                start_time=span.start,
                end_time=span.end,
                instrumentation_scope=scope,
            )
        )
    return out


def otlp_sink(endpoint: str) -> Sink:
    """A sink exporting to the collector at ``endpoint``; ImportError without the exporter."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=5)

    async def sink(batch: list[SpanData]) -> None:
        result = await asyncio.to_thread(exporter.export, to_readable(batch))
        if result is not SpanExportResult.SUCCESS:
            raise ConnectionError(f"the OTLP collector at {endpoint} did not take the spans")

    return sink
