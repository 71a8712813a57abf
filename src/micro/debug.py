"""The ``Debug`` handler every service answers (unadvertised): Health, Stats, Log."""

from __future__ import annotations

import gc
import resource
import threading
import time
from typing import Any

import msgspec

from micro.log import ring

__all__ = ["Debug", "HealthResponse", "LogRequest", "LogResponse", "StatsResponse"]


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


class Debug:
    """Health, stats and recent log lines of this process."""

    def __init__(self, stats: dict[str, int]) -> None:
        self._stats = stats
        self._started = int(time.time())

    async def health(self) -> HealthResponse:
        """Answers ``ok`` while the service serves."""
        return HealthResponse()

    async def stats(self) -> StatsResponse:
        """Counters of this process."""
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
        records: list[dict[str, Any]] = [r for r in ring.records if r["timestamp"] >= req.since]
        if req.count > 0:
            records = records[-req.count :]
        return LogResponse([LogRecord(**r) for r in records])
