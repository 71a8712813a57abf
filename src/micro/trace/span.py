"""Spans made by hand: the platform's own hops other than RPC calls (the gateway, the
proxy, broker messages, events) and a service's own pieces of work::

    with micro.trace.span("price the basket"):
        ...

A :class:`Span` is started from a parent (or starts a trace, if the sampler says so),
tells what to send on as ``traceparent``, and is recorded when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import msgspec

from micro.trace.context import (
    Parent,
    activate,
    current,
    deactivate,
    format_parent,
    new_span_id,
    new_trace_id,
)
from micro.trace.middleware import NO_ATTRIBUTES, status_of
from micro.trace.record import INTERNAL, Recorder, SpanData, recorder

__all__ = ["Span", "span", "start"]

_FOLLOW: Final = object()


class Span(msgspec.Struct, gc=False):
    """A span in progress; :meth:`end` records it. (A Struct: made in C, where a class's
    ``__init__`` cost a third of a span on the proxy's hot path.)"""

    recorder: Recorder
    name: str
    kind: int
    service: str
    namespace: str
    trace_id: str
    parent_id: str
    attributes: dict[str, str]
    span_id: str = msgspec.field(default_factory=new_span_id)
    start: int = msgspec.field(default_factory=time.time_ns)

    @property
    def context(self) -> Parent:
        """This span as the parent of others."""
        return Parent(self.trace_id, self.span_id, True)

    @property
    def traceparent(self) -> str:
        """What to send on as ``traceparent`` for children of this span."""
        return format_parent(self.trace_id, self.span_id)

    def end(self, status: int = 0, error: str = "") -> None:
        """Record the span as finished now."""
        self.recorder.add(
            SpanData(
                self.trace_id,
                self.span_id,
                self.parent_id,
                self.name,
                self.kind,
                self.start,
                time.time_ns(),
                self.service,
                self.namespace,
                status,
                error,
                self.attributes,
            )
        )

    def fail(self, exc: BaseException) -> None:
        """Record the span as failed with ``exc``."""
        self.end(*status_of(exc))


def start(
    name: str,
    kind: int = INTERNAL,
    *,
    parent: Parent | object | None = _FOLLOW,
    service: str | None = None,
    namespace: str | None = None,
    root: bool = True,
    attributes: dict[str, str] | None = None,
    rec: Recorder | None = None,
) -> Span | None:
    """A span named ``name``, child of ``parent`` (default: the current span); ``None``
    when it is not to be recorded: tracing off, an unsampled parent, or no parent and
    (``root`` false, or the sampler said no)."""
    rec = rec or recorder
    if not rec.enabled:
        return None
    if service == "":
        service = None
    found = current() if parent is _FOLLOW else parent
    if found is None:
        # A trace starts only where spans are kept (not in the CLI) and sampled.
        if not root or not rec.sinks or not rec.sample():
            return None
        trace_id, parent_id = new_trace_id(), ""
    else:
        assert isinstance(found, Parent)
        if not found.sampled:
            return None
        trace_id, parent_id = found.trace_id, found.span_id
    if namespace is None or service is None:
        from micro.rpc import context as rpc_context

        serving = rpc_context.current()
        if namespace is None:
            namespace = rpc_context.namespace()
        if service is None:
            # The service serving the call this span is part of (several services may
            # share a process, as in tests), else the process's.
            service = serving.service if serving is not None else rec.service
    return Span(
        rec,
        name,
        kind,
        service,
        namespace,
        trace_id,
        parent_id,
        attributes or NO_ATTRIBUTES,
    )


@contextmanager
def span(name: str, **attributes: str) -> Iterator[Span | None]:
    """Time a piece of work as a span of the current trace (or of a new one), current
    while the block runs; an exception leaving the block marks it failed."""
    made = start(name, attributes={k: str(v) for k, v in attributes.items()})
    if made is None:
        yield None
        return
    token = activate(made.context)
    try:
        yield made
    except BaseException as exc:
        made.fail(exc)
        raise
    else:
        made.end()
    finally:
        deactivate(token)
