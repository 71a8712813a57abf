"""Prometheus metrics of the gateway (``GET /metrics``), kept without a client library:
a counter and a latency histogram per service, endpoint and status code.

Callers name any path, so only what the registry lists gets series of its own: requests
for unknown services or endpoints share the labels :data:`UNKNOWN`, and past
``max_series`` (a registry can be large too) new ones share :data:`OTHER`. So neither the
memory nor the time ``/metrics`` takes grows with what callers send."""

from __future__ import annotations

import bisect
from typing import Final

__all__ = ["BUCKETS", "OTHER", "UNKNOWN", "Metrics"]

BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the latency histogram, in seconds."""

UNKNOWN: Final = ("(unknown)", "(unknown)")
"""The service and endpoint labels of requests for what the registry does not list."""
OTHER: Final = ("(other)", "(other)")
"""The labels of registered endpoints past the series limit."""


class _Series:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counts requests and their latencies, in at most ``max_series`` series (plus the
    shared ones)."""

    def __init__(self, max_series: int = 2000) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._max_series = max_series

    def observe_unknown(self, status: int, seconds: float) -> None:
        """Record a request for a service or endpoint the registry does not list."""
        self.observe(*UNKNOWN, status, seconds)

    def observe(self, service: str, endpoint: str, status: int, seconds: float) -> None:
        """Record one request to a registered endpoint."""
        key = (service, endpoint, status)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self._max_series:
                key = (*OTHER, status)
            series = self._series.get(key) or self._series.setdefault(key, _Series())
        series.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        series.count += 1
        series.total += seconds

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        lines = [
            "# HELP micro_api_requests_total Requests the gateway answered.",
            "# TYPE micro_api_requests_total counter",
        ]
        for (service, endpoint, status), s in sorted(self._series.items()):
            labels = f'service="{_label(service)}",endpoint="{_label(endpoint)}",code="{status}"'
            lines.append(f"micro_api_requests_total{{{labels}}} {s.count}")
        lines += [
            "# HELP micro_api_request_duration_seconds Time to answer a request.",
            "# TYPE micro_api_request_duration_seconds histogram",
        ]
        for (service, endpoint, status), s in sorted(self._series.items()):
            labels = f'service="{_label(service)}",endpoint="{_label(endpoint)}",code="{status}"'
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), s.buckets, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f'micro_api_request_duration_seconds_bucket{{{labels},le="{le}"}} {running}'
                )
            lines.append(f"micro_api_request_duration_seconds_sum{{{labels}}} {s.total}")
            lines.append(f"micro_api_request_duration_seconds_count{{{labels}}} {s.count}")
        return ("\n".join(lines) + "\n").encode()
