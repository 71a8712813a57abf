"""Prometheus metrics of the gateway: a counter and a latency histogram per service,
endpoint and status code (the families live in :mod:`micro.metrics`).

Callers name any path, so only what the registry lists gets series of its own: requests
for unknown services or endpoints share the labels :data:`UNKNOWN`, and past
``max_series`` endpoints (a registry can be large too) new ones share :data:`OTHER`. So
neither the memory nor the time a scrape takes grows with what callers send. The text is
served to platform admins only (``GET /metrics`` with an admin's token): the series name
every namespace's services and endpoints."""

from __future__ import annotations

from typing import Final

from micro.metrics.families import BUCKETS, Labels, Registry, Series
from micro.metrics.families import OTHER as _OTHER
from micro.metrics.families import UNKNOWN as _UNKNOWN

__all__ = ["BUCKETS", "OTHER", "UNKNOWN", "Metrics"]

UNKNOWN: Final = (_UNKNOWN, _UNKNOWN)
"""The service and endpoint labels of requests for what the registry does not list."""
OTHER: Final = (_OTHER, _OTHER)
"""The labels of registered endpoints past the series limit."""


class Metrics:
    """Counts requests and their latencies, for at most ``max_series`` endpoints (plus
    the shared ones), in ``registry`` (one of its own by default)."""

    def __init__(self, max_series: int = 2000, registry: Registry | None = None) -> None:
        # Status codes are few (100-599): room for every code of every endpoint kept.
        self.registry = registry or Registry(max_series=max_series * 16)
        self._seen: set[tuple[str, str]] = set()
        self._slots: dict[tuple[str, str, int], tuple[Labels, Series]] = {}
        self._max_series = max_series
        labels = ("service", "endpoint", "code")
        self._requests = self.registry.counter(
            "micro_api_requests_total", "Requests the gateway answered.", labels
        )
        self._latency = self.registry.histogram(
            "micro_api_request_duration_seconds", "Time to answer a request.", labels
        )

    def observe_unknown(self, status: int, seconds: float) -> None:
        """Record a request for a service or endpoint the registry does not list."""
        self.observe(*UNKNOWN, status, seconds)

    def observe(self, service: str, endpoint: str, status: int, seconds: float) -> None:
        """Record one request to a registered endpoint. The series of each (service,
        endpoint, status) are looked up once: a request costs two additions and a bucket."""
        slot = self._slots.get((service, endpoint, status))
        if slot is None:
            slot = self._slot(service, endpoint, status)
        self._requests.values[slot[0]] += 1
        slot[1].observe(seconds)

    def _slot(self, service: str, endpoint: str, status: int) -> tuple[Labels, Series]:
        pair = (service, endpoint)
        if pair not in self._seen:
            if len(self._seen) >= self._max_series and pair != UNKNOWN:
                pair = OTHER
            self._seen.add(pair)
        code = str(status)
        slot = (self._requests.key(*pair, code), self._latency.series_of(*pair, code))
        if len(self._slots) < self._max_series * 16:  # past it, looked up every time
            self._slots[(service, endpoint, status)] = slot
        return slot

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        return self.registry.render()
