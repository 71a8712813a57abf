"""The metrics of one process: calls served per endpoint, calls in flight, events
published and consumed, and the lag of the groups it consumes in.

One :class:`ProcessMetrics` per process (:func:`default`), filled as a server observer
(:class:`micro.rpc.Observer`: every :class:`micro.Service` and ``micro server`` install
it) and by the events helpers; read through ``Debug.Metrics`` (see :mod:`micro.debug`).
Labels come from the code, never from callers: a server's observers are only told of
calls to endpoints the process hosts (an unknown endpoint is refused before), topics and
groups are the ones the service's code names.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from micro import errors
from micro.metrics.families import Registry, Series, quantile
from micro.rpc.context import Call

__all__ = ["EndpointStats", "ProcessMetrics", "default"]


class EndpointStats(msgspec.Struct):
    """One endpoint at a glance (the dashboard's row): totals since the process started
    and latency quantiles (seconds) estimated from the histogram."""

    service: str
    endpoint: str
    requests: int
    errors: int
    p50: float | None
    p99: float | None


class _Slot:
    """One endpoint's series, resolved once: its 200s, its latency, its service's
    calls in flight."""

    __slots__ = ("in_flight", "latency", "ok")

    def __init__(self, ok: tuple[str, ...], latency: Series, in_flight: tuple[str, ...]) -> None:
        self.ok = ok
        self.latency = latency
        self.in_flight = in_flight


class ProcessMetrics:
    """The families of this process, in ``registry``."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        self.started = time.time()
        self._slots: dict[tuple[str, str], _Slot] = {}
        r = self.registry
        self.requests = r.counter(
            "micro_requests_total", "Calls served, by endpoint and code.",
            ("service", "endpoint", "code"),
        )  # fmt: skip
        self.latency = r.histogram(
            "micro_request_duration_seconds", "Time to serve a call (a stream: to start it).",
            ("service", "endpoint"),
        )  # fmt: skip
        self.in_flight = r.gauge(
            "micro_requests_in_flight", "Calls being served now.", ("service",)
        )
        self.published = r.counter(
            "micro_events_published_total", "Events this process published.", ("topic",)
        )
        self.consumed = r.counter(
            "micro_events_consumed_total", "Events this process handled (acked).",
            ("topic", "group"),
        )  # fmt: skip
        self.lag = r.gauge(
            "micro_events_consumer_lag", "Stored events a group has not been given yet.",
            ("topic", "group"),
        )  # fmt: skip

    def begin(self, call: Call) -> tuple[_Slot, float]:
        """A server observer's start (see :class:`micro.rpc.Observer`): counts the call in
        flight. Each endpoint's series are looked up once (:class:`_Slot`), so a call
        costs a few additions."""
        slot = self._slots.get((call.service, call.endpoint))
        if slot is None:
            slot = self._slot(call.service, call.endpoint)
        self.in_flight.values[slot.in_flight] += 1
        return slot, time.perf_counter()

    def end(self, call: Call, begun: tuple[_Slot, float], error: BaseException | None) -> None:
        """Counts the call by its code and times it."""
        slot, began = begun
        slot.latency.observe(time.perf_counter() - began)
        if error is None:
            self.requests.values[slot.ok] += 1
        else:
            code = str(error.code) if isinstance(error, errors.MicroError) else "500"
            if isinstance(error, TimeoutError):
                code = "408"
            self.requests.inc(call.service, call.endpoint, code)
        self.in_flight.values[slot.in_flight] -= 1

    def _slot(self, service: str, endpoint: str) -> _Slot:
        slot = _Slot(
            self.requests.key(service, endpoint, "200"),
            self.latency.series_of(service, endpoint),
            self.in_flight.key(service),
        )
        if len(self._slots) < self.registry.max_series:  # past it, looked up every time
            self._slots[(service, endpoint)] = slot
        return slot

    def watch_lag(self, topic: str, group: str, groups: Callable[[], Awaitable[Any]]) -> None:
        """Keep ``micro_events_consumer_lag`` of ``group`` fresh at every scrape, from
        ``groups()`` (the stream's :meth:`~micro.events.Stream.groups` of ``topic``)."""

        async def collect() -> None:
            for found in await groups():
                if found.group == group:
                    self.lag.set(topic, group, value=found.lag)

        self.registry.collectors.append(collect)

    def endpoints(self, *, by_service: bool = False) -> list[EndpointStats]:
        """Every endpoint served so far, with its totals and p50/p99; ``by_service``:
        one row per service instead (endpoint ``""``), its endpoints' histograms merged."""
        totals: dict[tuple[str, str], list[int]] = {}
        for (service, endpoint, code), count in self.requests.values.items():
            row = totals.setdefault((service, "" if by_service else endpoint), [0, 0])
            row[0] += int(count)
            if not code.startswith(("2", "3")):
                row[1] += int(count)
        rows = []
        for (service, endpoint), (requests, failed) in sorted(totals.items()):
            buckets = self.latency.merged(functools.partial(_matches, service, endpoint))
            rows.append(
                EndpointStats(
                    service,
                    endpoint,
                    requests,
                    failed,
                    quantile(0.5, buckets),
                    quantile(0.99, buckets),
                )
            )
        return rows


def _matches(service: str, endpoint: str, key: tuple[str, ...]) -> bool:
    """A latency series of ``service`` (and ``endpoint``, unless it is empty)."""
    return key[0] == service and (not endpoint or key[1] == endpoint)


_default: ProcessMetrics | None = None


def default() -> ProcessMetrics:
    """This process's metrics (made on first use)."""
    global _default
    if _default is None:
        _default = ProcessMetrics()
    return _default
