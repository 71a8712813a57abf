"""The event stream a service uses with no set-up.

Inside a running :class:`micro.Service` these functions use the stream the service set
(:func:`set_default`, the ``events`` service through its client, in its namespace); a
script outside a service gets the environment's client.
"""

from __future__ import annotations

import asyncio
import builtins
from dataclasses import dataclass
from typing import Any

import msgspec

from micro.events.base import Consumer, Event, Offset, Stream

__all__ = ["Bound", "consume", "default", "encode_payload", "publish", "read", "set_default"]

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Bound:
    """A stream with the namespace its calls default to."""

    stream: Stream
    namespace: str = "micro"


_defaults: dict[asyncio.AbstractEventLoop, Bound] = {}


def set_default(stream: Stream, *, namespace: str = "micro") -> None:
    """Make ``stream`` (in ``namespace``) what this module's functions use on this loop."""
    _defaults[asyncio.get_running_loop()] = Bound(stream, namespace)


def default() -> Bound:
    """The running service's stream, or the environment's ``events`` service."""
    loop = asyncio.get_running_loop()
    bound = _defaults.get(loop)
    if bound is None:
        import micro.client
        from micro.events.client import RPCStream

        for stale in [lp for lp in _defaults if lp.is_closed()]:
            del _defaults[stale]
        # Outside a service: the namespace the environment's client acts in (one
        # namespace per call), as config and the broker do.
        client = micro.client.default()
        namespace = client.metadata.get("micro-namespace") or "micro"
        bound = _defaults[loop] = Bound(RPCStream(client), namespace)
    return bound


def encode_payload(payload: Any) -> bytes:
    """Bytes as they are, a str as UTF-8, anything else msgspec can encode as JSON."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return _encode(payload)


async def publish(
    topic: str,
    payload: Any,
    *,
    metadata: dict[str, str] | None = None,
    timestamp: float | None = None,
) -> Event:
    """Publish to ``topic``; see :meth:`micro.events.Stream.publish`."""
    from micro.metrics.process import default as default_metrics

    b = default()
    event = await b.stream.publish(
        topic,
        encode_payload(payload),
        metadata=metadata,
        timestamp=timestamp,
        namespace=b.namespace,
    )
    default_metrics().published.inc(topic)
    return event


def consume(
    topic: str,
    *,
    group: str | None = None,
    offset: Offset | None = None,
    auto_ack: bool = True,
    ack_wait: float = 30.0,
    retry_limit: int | None = None,
) -> Consumer:
    """Consume ``topic``; see :meth:`micro.events.Stream.consume`."""
    b = default()
    return b.stream.consume(
        topic,
        group=group,
        offset=offset,
        auto_ack=auto_ack,
        ack_wait=ack_wait,
        retry_limit=retry_limit,
        namespace=b.namespace,
    )


async def read(
    topic: str, *, limit: int = 250, offset: Offset | None = None
) -> builtins.list[Event]:
    """Replay stored events; see :meth:`micro.events.Stream.read`."""
    b = default()
    return await b.stream.read(topic, limit=limit, offset=offset, namespace=b.namespace)
