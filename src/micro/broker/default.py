"""The broker a service uses with no set-up: its namespace on the ``broker`` service.

Inside a running :class:`micro.Service` these functions use the ``broker`` service through
that service's client, in the service's namespace; a script outside a service gets the
environment's client and its namespace.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec

from micro.broker.base import Broker, Message, Subscriber
from micro.trace.messaging import published

__all__ = ["Bound", "default", "encode", "publish", "set_default", "subscribe"]


@dataclass(frozen=True, slots=True)
class Bound:
    """A broker with the namespace its calls default to."""

    broker: Broker
    namespace: str = "micro"


_defaults: dict[asyncio.AbstractEventLoop, Bound] = {}


def set_default(broker: Broker, *, namespace: str) -> None:
    """Make ``broker`` (in ``namespace``) what this module's functions use on this loop."""
    _defaults[asyncio.get_running_loop()] = Bound(broker, namespace)


def default() -> Bound:
    """The running service's broker, or the environment's ``broker`` service."""
    loop = asyncio.get_running_loop()
    bound = _defaults.get(loop)
    if bound is None:
        import micro.client
        from micro.broker.client import RPCBroker

        for stale in [lp for lp in _defaults if lp.is_closed()]:
            del _defaults[stale]
        client = micro.client.default()
        namespace = client.metadata.get("micro-namespace", "micro")
        bound = _defaults[loop] = Bound(RPCBroker(client), namespace)
    return bound


def encode(topic: str, payload: Any, header: dict[str, str] | None = None) -> Message:
    """``payload`` as a message: bytes as they are, ``str`` as UTF-8 text, anything else
    msgspec can encode (Struct, dataclass, dict, ...) as JSON; with ``Content-Type`` and
    ``Micro-Topic`` headers (Micro's) unless ``header`` sets them."""
    if isinstance(payload, bytes | bytearray | memoryview):
        body, ctype = bytes(payload), "application/octet-stream"
    elif isinstance(payload, str):
        body, ctype = payload.encode(), "text/plain; charset=utf-8"
    else:
        body, ctype = msgspec.json.encode(payload), "application/json"
    return Message({"Content-Type": ctype, "Micro-Topic": topic, **(header or {})}, body)


async def publish(
    topic: str,
    payload: Any,
    *,
    header: dict[str, str] | None = None,
    namespace: str | None = None,
) -> None:
    """Publish ``payload`` (see :func:`encode`) to ``topic``'s subscribers now open."""
    b = default()
    where = namespace or b.namespace

    async def send(stored: dict[str, str]) -> None:
        await b.broker.publish(topic, encode(topic, payload, stored), namespace=where)

    # The trace's context travels in the message's header, to its subscribers' spans.
    await published(topic, where, header or {}, send)


def subscribe(topic: str, *, queue: str | None = None, namespace: str | None = None) -> Subscriber:
    """Subscribe to ``topic`` (use ``async with``); see :meth:`micro.broker.Broker.subscribe`."""
    b = default()
    return b.broker.subscribe(topic, queue=queue, namespace=namespace or b.namespace)
