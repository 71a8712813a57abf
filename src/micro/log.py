"""Logging set-up shared by the server, services and the CLI, and the ring of recent
records that ``Debug.Log`` serves.

Lines look like Micro's: ``2020-10-06 17:52:21  level=info Starting [service] helloworld``,
or one JSON object per line with ``MICRO_LOG_FORMAT=json``.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import time
from typing import Any

__all__ = ["RingHandler", "configure", "ring"]


class RingHandler(logging.Handler):
    """Keeps the last ``capacity`` records for ``Debug.Log``."""

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__()
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(
            {
                "timestamp": int(record.created),
                "metadata": {"level": record.levelname.lower(), "logger": record.name},
                "message": record.getMessage(),
            }
        )


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        line = f"{stamp}  level={record.levelname.lower()} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data)


ring = RingHandler()
_configured = False


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send log records to stderr in the chosen format, once per process."""
    global _configured
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter() if fmt == "json" else _TextFormatter())
    root.addHandler(handler)
    root.addHandler(ring)
