"""Spans of messages: a ``PRODUCER`` span where an event or broker message is published,
its context stored on the message (``traceparent`` in the event's metadata, the broker
message's header), and a ``CONSUMER`` span, its child, where it is delivered.

An event consumed long after it was published still joins its publisher's trace: the
context lives as long as the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from micro.trace.context import TRACEPARENT, activate, deactivate, parse
from micro.trace.record import CONSUMER, PRODUCER
from micro.trace.span import Span, start

__all__ = ["consumed", "published"]

T = TypeVar("T")


async def published(
    topic: str,
    namespace: str,
    metadata: dict[str, str],
    send: Callable[[dict[str, str]], Awaitable[T]],
) -> T:
    """Publish with ``send(metadata)``, in a ``PRODUCER`` span (of the current trace, or
    of a new one) whose context ``metadata`` carries."""
    span = start(f"publish {topic}", PRODUCER, namespace=namespace)
    if span is None:
        return await send(metadata)
    sending = {**metadata, TRACEPARENT: span.traceparent}
    return await _within(span, lambda: send(sending))


async def consumed(
    topic: str,
    namespace: str,
    service: str,
    metadata: Mapping[str, str],
    handle: Callable[[], Awaitable[Any]],
) -> Any:
    """Run ``handle()`` for a message delivered, in a ``CONSUMER`` span, child of the
    context the message carries (or a trace of its own), current while it runs."""
    span: Span | None = start(
        f"consume {topic}",
        CONSUMER,
        parent=parse(metadata.get(TRACEPARENT)),
        service=service or None,
        namespace=namespace,
    )
    if span is None:
        return await handle()
    return await _within(span, handle)


async def _within(span: Span, run: Callable[[], Awaitable[T]]) -> T:
    """``run()`` with ``span`` current; the span ends with its outcome."""
    token = activate(span.context)
    try:
        result = await run()
    except BaseException as exc:
        span.fail(exc)
        raise
    finally:
        deactivate(token)
    span.end()
    return result
