"""The ``Debug`` handler every service answers (unadvertised): Health, Stats, Log, Metrics.

``Debug.Metrics`` answers a service's Prometheus metrics (:mod:`micro.metrics`) to accounts
of the service's namespace (and platform admins) that its rules let call it: even where a
namespace's rules open its services to other namespaces' accounts, its metrics stay its
own. ``Debug.Stats`` and ``Debug.Log`` (recent log lines) are held the same way; only
``Debug.Health`` answers whoever may call the service. The server's own (the core
services', whose logs speak of every namespace) are for platform admins only.
"""

from __future__ import annotations

import gc
import resource
import threading
import time
from typing import Any

import msgspec

from micro.log import ring
from micro.metrics.process import EndpointStats, ProcessMetrics

__all__ = [
    "Debug",
    "HealthResponse",
    "LogRequest",
    "LogResponse",
    "MetricsResponse",
    "StatsResponse",
]


class HealthResponse(msgspec.Struct):
    status: str = "ok"


class StatsResponse(msgspec.Struct):
    timestamp: int
    started: int
    uptime: int
    memory: int
    """Peak resident set size in bytes."""
    threads: int
    gc: int
    requests: int
    errors: int


class LogRequest(msgspec.Struct, omit_defaults=True):
    count: int = 0
    since: int = 0


class LogRecord(msgspec.Struct):
    timestamp: int
    metadata: dict[str, str]
    message: str


class LogResponse(msgspec.Struct):
    records: list[LogRecord]


class MetricsResponse(msgspec.Struct):
    """``text``: the Prometheus exposition; ``endpoints``: each served endpoint's totals
    and p50/p99, ``services`` the same per service; ``started``/``timestamp``: unix
    seconds (a rate is requests over them)."""

    text: str
    started: float
    timestamp: float
    endpoints: list[EndpointStats]
    services: list[EndpointStats] = []


class Debug:
    """Health, stats, recent log lines and metrics of this process. Metrics are for
    accounts of ``namespace`` (the service's), or with ``admins_only`` for platform
    admins only (the server's)."""

    def __init__(
        self,
        stats: dict[str, int],
        metrics: ProcessMetrics | None = None,
        *,
        namespace: str = "micro",
        admins_only: bool = False,
    ) -> None:
        self._stats = stats
        self._started = int(time.time())
        self._metrics = metrics
        self._namespace = namespace
        self._admins_only = admins_only

    async def health(self) -> HealthResponse:
        """Answers ``ok`` while the service serves."""
        return HealthResponse()

    def _check(self) -> None:
        """Only accounts of the service's namespace (or, ``admins_only``, platform admins)."""
        from micro.auth import access

        if self._admins_only:
            access.authorize_admin("micro")
        else:
            access.authorize(self._namespace)

    async def stats(self) -> StatsResponse:
        """Counters of this process."""
        self._check()
        now = int(time.time())
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return StatsResponse(
            timestamp=now,
            started=self._started,
            uptime=now - self._started,
            memory=rss_kib * 1024,
            threads=threading.active_count(),
            gc=sum(s.get("collections", 0) for s in gc.get_stats()),
            requests=self._stats.get("requests", 0),
            errors=self._stats.get("errors", 0),
        )

    async def log(self, req: LogRequest) -> LogResponse:
        """The last ``count`` records (all kept if 0) newer than ``since`` (unix seconds)."""
        self._check()
        records: list[dict[str, Any]] = [r for r in ring.records if r["timestamp"] >= req.since]
        if req.count > 0:
            records = records[-req.count :]
        return LogResponse([LogRecord(**r) for r in records])

    async def metrics(self) -> MetricsResponse:
        """This process's metrics: the Prometheus text and a summary per endpoint."""
        self._check()
        if self._metrics is None:
            return MetricsResponse("", self._started, time.time(), [], [])
        await self._metrics.registry.collect()
        return MetricsResponse(
            self._metrics.registry.render().decode(),
            self._metrics.started,
            time.time(),
            self._metrics.endpoints(),
            self._metrics.endpoints(by_service=True),
        )
