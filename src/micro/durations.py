"""Durations as people write and read them: Go-style ``5s``, ``1m30s`` in (CLI flags,
dashboard forms), ``1d2h3m4s`` out (Micro's "updated ... ago")."""

from __future__ import annotations

import datetime
import re
import time

__all__ = ["ago", "go_duration", "humanize", "parse_duration"]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration as ``time.ParseDuration`` reads it (``-1m30s``, ``500ms``;
    a plain number is seconds); ``None`` for anything else."""
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    sign = 1.0
    if raw[:1] in ("-", "+"):
        sign = -1.0 if raw[0] == "-" else 1.0
        raw = raw[1:]
    if not raw:
        return None
    pos, seconds = 0, 0.0
    while pos < len(raw):
        match = _DURATION_PART.match(raw, pos)
        if match is None:
            return None
        seconds += float(match[1]) * _UNITS[match[2]]
        pos = match.end()
    return sign * seconds


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``5s``, ``500ms``, ``1m30s``); a plain number is
    seconds. ``ValueError`` for anything else or a duration that is not positive."""
    if not text.strip():
        raise ValueError("empty duration")
    seconds = go_duration(text)
    if seconds is None:
        raise ValueError(f"invalid duration {text!r}")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


def humanize(seconds: float) -> str:
    """A duration as Micro prints it: ``1d2h3m4s`` (whole units, largest first)."""
    left = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    if left or not parts:
        parts.append(f"{left}s")
    return "".join(parts)


def ago(started: str) -> str:
    """``4s ago`` for an RFC 3339 time (``n/a`` when it is not one), as ``micro status``
    shows when a service started."""
    try:
        at = datetime.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return "n/a"
    return humanize(max(time.time() - at.timestamp(), 0)) + " ago"
