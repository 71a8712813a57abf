"""The spans of the platform's doors: the gateway's request and the proxy's forward.

Both read the caller's ``traceparent`` (an HTTP header, native or gRPC metadata: all end
up as call metadata), record a span in the namespace the call is made in, and send their
own span on as the callee's parent. Failures to find a service, when nothing upstream
traces the call, are not kept: anyone can name any service in any namespace, and such
spans would only crowd out real traces.
"""

from __future__ import annotations

from micro.trace.context import TRACEPARENT, parse
from micro.trace.middleware import status_of
from micro.trace.record import CLIENT, SERVER
from micro.trace.span import Span, start
from micro.wire.frames import RequestHeader

__all__ = ["forward_failed", "forward_span", "request_span"]


def forward_span(header: RequestHeader) -> Span | None:
    """The proxy's span of a call it forwards; the call carries it on."""
    md = header.metadata
    span = start(
        f"{header.service} {header.endpoint}",
        CLIENT,
        parent=parse(md.get(TRACEPARENT)),
        service="proxy",
        namespace=md.get("micro-namespace") or "micro",
    )
    if span is not None:
        md[TRACEPARENT] = span.traceparent
    return span


def request_span(name: str, metadata: dict[str, str], namespace: str) -> Span | None:
    """The gateway's span of an HTTP request; its call carries it on."""
    span = start(
        name[:200],
        SERVER,
        parent=parse(metadata.get(TRACEPARENT)),
        service="api",
        namespace=namespace,
    )
    if span is not None:
        metadata[TRACEPARENT] = span.traceparent
    return span


def forward_failed(span: Span, exc: BaseException) -> None:
    """End ``span`` as failed with ``exc`` (unless it is a root span of a service not found)."""
    status, error = status_of(exc)
    if status == 404 and not span.parent_id:
        return
    span.end(status, error)
