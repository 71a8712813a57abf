"""Best-effort conversions behind :class:`micro.config.Value`'s typed getters.

Each returns ``None`` when the value cannot be read as the asked type, and the getter
then answers its default: a getter never raises.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import msgspec

from micro.durations import go_duration

__all__ = [
    "to_bool",
    "to_duration",
    "to_float",
    "to_int",
    "to_string",
    "to_string_map",
    "to_strings",
]

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
"""Go's ``strconv.ParseBool``, which Micro's ``Bool`` uses."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_string(value: Any) -> str | None:
    """Strings as they are; numbers and booleans as their JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or _number(value):
        return msgspec.json.encode(value).decode()
    return None


def to_int(value: Any) -> int | None:
    """Integers; floats truncated toward zero (as Go converts); numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if math.isfinite(number) else None
    return None


def to_float(value: Any) -> float | None:
    """Numbers; numeric strings."""
    if _number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def to_bool(value: Any) -> bool | None:
    """Booleans; Go's boolean strings (``true``, ``1``, ``f`` ...); numbers (non-zero is true)."""
    if isinstance(value, bool):
        return value
    if _number(value):
        return bool(value)
    if isinstance(value, str):
        text = value.strip()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def to_duration(value: Any) -> timedelta | None:
    """Numbers as seconds; Go duration strings (``1m30s``, ``-1.5h``, ``300ms``, ``0``);
    numeric strings as seconds."""
    if _number(value):
        seconds = float(value)
    elif isinstance(value, str):
        parsed = go_duration(value.strip())
        if parsed is None:
            return None
        seconds = parsed
    else:
        return None
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        return None


def _item(value: Any) -> str:
    text = to_string(value)
    if text is not None:
        return text
    return msgspec.json.encode(value).decode()


def to_strings(value: Any) -> list[str] | None:
    """Arrays, each item as a string (objects and arrays as compact JSON); a string as
    its comma-separated parts, as Micro's ``StringSlice``."""
    if isinstance(value, list):
        return [_item(v) for v in value]
    if isinstance(value, str) and value:
        return [part.strip() for part in value.split(",")]
    return None


def to_string_map(value: Any) -> dict[str, str] | None:
    """Objects, each value as a string (objects and arrays as compact JSON)."""
    if isinstance(value, dict):
        return {str(k): _item(v) for k, v in value.items()}
    return None
