"""Event handlers of a service: ``@service.consume("topic", group="g")`` on
``async def handle(evt: T)``.

The payload is decoded as JSON into ``T`` (``bytes``: as it is; :class:`Event`: the whole
event). A handler that returns acknowledges the event; one that raises is logged and the
event nacked (delivered again, up to ``retry_limit``, then dead-lettered).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from micro.events.base import Delivery, Event, Offset, Stream
from micro.trace.messaging import consumed as in_span

__all__ = ["ConsumerSpec", "consumer", "run_consumers"]

log = logging.getLogger("micro.events")

Handler = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """What :func:`run_consumers` needs to run one handler."""

    topic: str
    group: str | None
    handler: Handler
    payload_type: Any
    offset: Offset | None = None
    ack_wait: float = 30.0
    retry_limit: int | None = None


def _payload_type(handler: Handler) -> Any:
    params = list(inspect.signature(handler).parameters.values())
    if len(params) != 1:
        raise TypeError(f"an event handler takes one argument, the event: {handler!r}")
    try:
        hints = typing.get_type_hints(handler)
    except Exception:
        hints = {}
    return hints.get(params[0].name, Any)


def consumer(
    topic: str,
    *,
    group: str | None,
    offset: Offset | None = None,
    ack_wait: float = 30.0,
    retry_limit: int | None = None,
) -> Callable[[Handler], ConsumerSpec]:
    """A decorator making a :class:`ConsumerSpec` of ``async def handle(evt: T)``."""

    def wrap(handler: Handler) -> ConsumerSpec:
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"an event handler must be an async def: {handler!r}")
        return ConsumerSpec(
            topic, group, handler, _payload_type(handler), offset, ack_wait, retry_limit
        )

    return wrap


def _argument(delivery: Delivery, tp: Any) -> Any:
    event = delivery.event
    if tp is Event:
        return event
    if tp is Delivery:
        return delivery
    if tp is bytes:
        return event.payload
    if tp is Any:
        return msgspec.json.decode(event.payload) if event.payload else None
    return msgspec.json.decode(event.payload, type=tp)


async def _run(stream: Stream, spec: ConsumerSpec, namespace: str, service: str) -> None:
    from micro.metrics.process import default as default_metrics

    consumed = default_metrics().consumed
    while True:
        consumer = stream.consume(
            spec.topic,
            group=spec.group,
            offset=spec.offset,
            auto_ack=False,
            ack_wait=spec.ack_wait,
            retry_limit=spec.retry_limit,
            namespace=namespace,
        )
        try:
            async for delivery in consumer:
                try:
                    await in_span(
                        spec.topic,
                        namespace,
                        service,
                        delivery.event.metadata,
                        functools.partial(spec.handler, _argument(delivery, spec.payload_type)),
                    )
                except Exception:
                    log.exception(
                        "event handler %s failed on %r",
                        getattr(spec.handler, "__qualname__", spec.handler),
                        delivery,
                    )
                    await delivery.nack()
                else:
                    await delivery.ack()
                    consumed.inc(spec.topic, spec.group or "")
            return  # the stream closed
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("consuming %s failed (%s); again in 1 s", spec.topic, exc)
        finally:
            await consumer.stop()
        await asyncio.sleep(1.0)


async def run_consumers(
    stream: Stream, specs: list[ConsumerSpec], namespace: str, *, service: str = ""
) -> list[asyncio.Task[None]]:
    """Start one task per spec (cancel them to stop); each reconnects after a failure.
    Each event is handled in a span of ``service`` continuing its publisher's trace; the
    lag of every named group is kept in this process's metrics."""
    from micro.metrics.process import default as default_metrics

    metrics = default_metrics()
    for spec in specs:
        if spec.group is not None:
            metrics.watch_lag(spec.topic, spec.group, functools.partial(
                stream.groups, spec.topic, namespace=namespace
            ))  # fmt: skip
    return [
        asyncio.create_task(
            _run(stream, spec, namespace, service), name=f"micro-consume-{spec.topic}"
        )
        for spec in specs
    ]
