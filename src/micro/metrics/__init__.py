"""Prometheus metrics with bounded labels: the families (:mod:`micro.metrics.families`)
and the metrics of a process (:mod:`micro.metrics.process`), read through each
service's ``Debug.Metrics`` and, for the server, ``GET /metrics`` on the gateway (platform
admins only)."""

from micro.metrics.families import (
    BUCKETS,
    OTHER,
    UNKNOWN,
    Counter,
    Gauge,
    Histogram,
    Registry,
)
from micro.metrics.process import EndpointStats, ProcessMetrics, default

__all__ = [
    "BUCKETS",
    "OTHER",
    "UNKNOWN",
    "Counter",
    "EndpointStats",
    "Gauge",
    "Histogram",
    "ProcessMetrics",
    "Registry",
    "default",
]
