"""Subscribers in a service: ``async def`` handlers bound to a topic by a decorator.

::

    @service.subscribe("orders.created", queue="billing")
    async def on_order(order: Order) -> None: ...

The handler's one parameter says what it gets: :class:`~micro.broker.base.Message` (as
is), ``bytes`` (the body), ``str`` (the body as UTF-8), or any type msgspec decodes from
the JSON body (Struct, dataclass, dict, ``Any``, ...). A body that does not decode is
logged and skipped; a handler that raises is logged; neither stops the subscriber. The
:class:`~micro.Service` calls :func:`run_subscribers` at start and cancels the tasks at
stop; a subscription that ends with an error (broker down, too slow) is made again after
a back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import msgspec

from micro.broker._backend import check_queue, check_topic
from micro.broker.base import Broker, Message, Subscriber
from micro.trace.messaging import consumed

__all__ = ["SubscriberSpec", "run_subscribers", "subscriber"]

log = logging.getLogger("micro.broker")

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

RETRY_FIRST = 0.5
RETRY_MAX = 30.0


@dataclass(frozen=True, slots=True)
class SubscriberSpec:
    """A handler bound to a topic (and maybe a queue group), and how to decode for it."""

    topic: str
    queue: str | None
    handler: Callable[[Any], Awaitable[Any]]
    type: Any = Any

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))

    def decode(self, message: Message) -> Any:
        """The handler's argument from ``message``; ``msgspec`` errors when it does not fit."""
        if self.type is Message:
            return message
        if self.type is bytes:
            return message.body
        if self.type is str:
            return message.body.decode()
        return msgspec.json.decode(message.body, type=self.type)


def _param_type(handler: Callable[..., Any]) -> Any:
    params = list(inspect.signature(handler).parameters.values())
    if len(params) != 1:
        raise TypeError(f"subscriber {handler.__qualname__} must take exactly one parameter")
    try:
        hints = typing.get_type_hints(handler)
    except Exception as exc:
        raise TypeError(f"cannot resolve the type hints of {handler.__qualname__}: {exc}") from exc
    return hints.get(params[0].name, Any)


def subscriber(
    topic: str, *, queue: str | None = None, into: list[SubscriberSpec] | None = None
) -> Callable[[H], H]:
    """A decorator binding an ``async def handler(msg: T)`` to ``topic`` (in ``queue``).

    The spec is appended to ``into`` (the Service passes its list) and kept on the
    function as ``__micro_subscribers__``; the function itself is returned unchanged.
    Mistakes (a sync handler, a bad topic) raise at decoration time.
    """
    check_topic(topic)
    check_queue(queue)

    def decorate(handler: H) -> H:
        if not inspect.iscoroutinefunction(cast(Any, handler)):  # (no narrowing: stays H)
            raise TypeError(f"subscriber {handler.__qualname__} must be 'async def'")
        spec = SubscriberSpec(topic, queue or None, handler, _param_type(handler))
        specs: list[SubscriberSpec] = getattr(handler, "__micro_subscribers__", [])
        with contextlib.suppress(AttributeError):  # a callable object without __dict__
            handler.__micro_subscribers__ = [*specs, spec]  # type: ignore[attr-defined]
        if into is not None:
            into.append(spec)
        return handler

    return decorate


async def _deliver(spec: SubscriberSpec, message: Message, namespace: str, service: str) -> None:
    try:
        arg = spec.decode(message)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        log.warning(
            "subscriber %s on %s: undecodable message skipped: %s", spec.name, spec.topic, exc
        )
        return
    try:
        await consumed(
            spec.topic, namespace, service, message.header, functools.partial(spec.handler, arg)
        )
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("subscriber %s on %s failed", spec.name, spec.topic)


async def _run(
    broker: Broker, spec: SubscriberSpec, namespace: str, sub: Subscriber, service: str
) -> None:
    wait = RETRY_FIRST
    while True:
        try:
            async for message in sub:
                wait = RETRY_FIRST
                await _deliver(spec, message, namespace, service)
            return  # stopped: the broker closed
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "subscription of %s to %s ended: %s; again in %.1fs",
                spec.name,
                spec.topic,
                exc,
                wait,
            )
        finally:
            await sub.stop()
        await asyncio.sleep(wait)
        wait = min(wait * 2, RETRY_MAX)
        sub = broker.subscribe(spec.topic, queue=spec.queue, namespace=namespace)


async def run_subscribers(
    broker: Broker, specs: list[SubscriberSpec], namespace: str, *, service: str = ""
) -> list[asyncio.Task[None]]:
    """Subscribe every spec in ``namespace`` and serve it in a task of its own.

    When this returns, every subscription is in place (a failure to subscribe raises,
    after undoing the ones made). Cancel the tasks to unsubscribe.
    """
    subs: list[Subscriber] = []
    try:
        for spec in specs:
            sub = broker.subscribe(spec.topic, queue=spec.queue, namespace=namespace)
            await sub.__aenter__()
            subs.append(sub)
    except BaseException:
        for sub in subs:
            await sub.stop()
        raise
    return [
        asyncio.create_task(
            _run(broker, spec, namespace, sub, service), name=f"subscriber {spec.topic}"
        )
        for spec, sub in zip(specs, subs, strict=True)
    ]
