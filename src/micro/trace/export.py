"""Where a process's spans go: the sinks of its :data:`~micro.trace.record.recorder`.

- In ``micro server``: straight into its :class:`~micro.trace.store.TraceStore` (the
  gateway's, the proxy's and the dashboard's spans), with no hop.
- In a service: to the server's ``trace`` service, one ``Trace.Record`` per namespace per
  batch over the native wire the service already talks to the server on: no second
  protocol, no new port, and the server's door decides which namespace they land in.
- Anywhere, when ``MICRO_OTLP_ENDPOINT`` is set: also to that OTLP/HTTP collector
  (:mod:`micro.trace.otlp`), for keeping traces beyond the server's window.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from micro.settings import Settings
from micro.trace.record import Recorder, Sink, SpanData, by_namespace, recorder
from micro.trace.store import TraceStore

if TYPE_CHECKING:
    from micro.rpc.client import Client

__all__ = ["local_sink", "rpc_sink", "setup"]

log = logging.getLogger("micro.trace")


def local_sink(store: TraceStore) -> Sink:
    """Spans into the server's own store, each in the namespace it was recorded in (the
    server's spans name the namespace its door checked)."""

    async def sink(batch: list[SpanData]) -> None:
        store.add(batch)

    return sink


def rpc_sink(client: Client) -> Sink:
    """Spans to the server's ``trace`` service, a call per namespace."""
    from micro.trace.proto import RecordRequest

    async def sink(batch: list[SpanData]) -> None:
        for namespace, spans in by_namespace(batch).items():
            await client.call(
                "trace",
                "Trace.Record",
                RecordRequest(spans),
                metadata={"micro-namespace": namespace},
                timeout=5.0,
            )

    return sink


def setup(
    settings: Settings,
    *,
    service: str,
    owner: object,
    sink: Sink | None,
    rec: Recorder | None = None,
) -> Recorder:
    """Configure this process's recorder for ``service``: its sampling rate, ``sink``
    (the server's store or its ``trace`` service) and the OTLP export when configured;
    start its flushing. ``owner`` detaches them again (:func:`teardown`)."""
    rec = rec or recorder
    rec.configure(service=service, sample=settings.trace_sample)
    if sink is not None:
        rec.attach("micro", sink, owner)
    if settings.otlp_endpoint:
        from micro.trace.otlp import otlp_sink

        try:
            rec.attach("otlp", otlp_sink(settings.otlp_endpoint), owner)
        except ImportError:
            log.warning(
                "MICRO_OTLP_ENDPOINT is set but the OTLP exporter is not installed: "
                "pip install 'micro-python[otlp]'"
            )
    rec.start()
    return rec


async def teardown(owner: object, rec: Recorder | None = None) -> None:
    """Flush what ``owner``'s sinks are owed and detach them."""
    rec = rec or recorder
    await rec.flush()
    rec.detach("micro", owner)
    rec.detach("otlp", owner)
    if not rec.sinks:
        await rec.stop()
