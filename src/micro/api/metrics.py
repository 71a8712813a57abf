"""Prometheus metrics of the gateway (``GET /metrics``), kept without a client library:
a counter and a latency histogram per service, endpoint and status code."""

from __future__ import annotations

import bisect
from typing import Final

__all__ = ["Metrics"]

BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the latency histogram, in seconds."""


class _Series:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counts requests and their latencies."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}

    def observe(self, service: str, endpoint: str, status: int, seconds: float) -> None:
        """Record one request."""
        key = (service, endpoint, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
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
