"""Durations as people write and read them: Go-style ``5s``, ``1m30s`` in (CLI flags,
dashboard forms), ``1d2h3m4s`` out (Micro's "updated ... ago")."""

from __future__ import annotations

import re

__all__ = ["humanize", "parse_duration"]

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


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``5s``, ``500ms``, ``1m30s``); a plain number is
    seconds. ``ValueError`` for anything else or a duration that is not positive."""
    raw = text.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pos, seconds = 0, 0.0
        if not raw:
            raise ValueError("empty duration") from None
        while pos < len(raw):
            match = _DURATION_PART.match(raw, pos)
            if match is None:
                raise ValueError(f"invalid duration {text!r}") from None
            seconds += float(match[1]) * _UNITS[match[2]]
            pos = match.end()
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
