"""The ``trace`` service's messages (``Trace.Record``, ``Trace.List``, ``Trace.Read``)."""

from __future__ import annotations

import msgspec

from micro.trace.record import SpanData

__all__ = [
    "EmptyResponse",
    "ListRequest",
    "ListResponse",
    "ReadRequest",
    "ReadResponse",
    "RecordRequest",
    "Summary",
]


class RecordRequest(msgspec.Struct):
    """Finished spans of the caller's namespace (whatever namespace they name)."""

    spans: list[SpanData] = []


class EmptyResponse(msgspec.Struct):
    """Nothing to say."""


class ListRequest(msgspec.Struct):
    """A search of recent traces: each filter given must match (``status``: ``ok``,
    ``error`` or an HTTP code); newest first, at most ``limit``."""

    service: str = ""
    endpoint: str = ""
    status: str = ""
    min_duration_ms: float = 0.0
    limit: int = 50


class Summary(msgspec.Struct):
    """One trace in a list: its root span and what it spans."""

    id: str
    name: str
    service: str
    start: int
    """Unix time of the earliest span, nanoseconds."""
    duration_ms: float
    spans: int
    services: list[str]
    status: int
    error: bool


class ListResponse(msgspec.Struct):
    """Traces found, newest first."""

    traces: list[Summary] = []


class ReadRequest(msgspec.Struct):
    """One trace by its id (32 hex digits)."""

    id: str = ""


class ReadResponse(msgspec.Struct):
    """A trace's spans, earliest first."""

    spans: list[SpanData] = []
