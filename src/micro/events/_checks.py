"""Input checks shared by every :class:`~micro.events.base.Stream` implementation, so all
refuse the same things with :class:`~micro.errors.BadRequest`."""

from __future__ import annotations

import datetime
import re
from typing import Final

from micro import errors

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "check_consume",
    "check_group",
    "check_limit",
    "check_namespace",
    "check_offset",
    "check_payload",
    "check_topic",
    "offset_time",
]

MAX_PAYLOAD_BYTES: Final = 1 << 20
_TOPIC = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_GROUP = re.compile(r"[A-Za-z0-9_-]{1,128}")
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def check_topic(topic: str) -> None:
    """Letters, digits, ``_ -``, dot-separated words; at most 255 characters."""
    if not isinstance(topic, str) or len(topic) > 255 or not _TOPIC.fullmatch(topic):
        raise errors.BadRequest(
            "events",
            f"invalid topic {topic!r}: use letters, digits, '_', '-', with '.' between words "
            "(at most 255)",
        )


def check_namespace(namespace: str) -> None:
    if not _NAMESPACE.fullmatch(namespace):
        raise errors.BadRequest("events", f"invalid namespace {namespace!r}")


def check_limit(limit: int) -> None:
    if limit < 0:
        raise errors.BadRequest("events", f"limit must not be negative, not {limit}")


def check_offset(offset: int | datetime.datetime | None) -> None:
    if isinstance(offset, bool) or (isinstance(offset, int) and offset < 0):
        raise errors.BadRequest("events", f"invalid offset {offset!r}")


def check_payload(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise errors.PayloadTooLarge(
            "events", f"payload of {len(payload)} bytes; at most {MAX_PAYLOAD_BYTES}"
        )


def check_consume(
    topic: str,
    group: str | None,
    offset: int | datetime.datetime | None,
    ack_wait: float,
    retry_limit: int | None,
    namespace: str,
) -> None:
    """Everything :meth:`~micro.events.base.Stream.consume` is given."""
    check_topic(topic)
    check_namespace(namespace)
    if group is not None:
        check_group(group)
    check_offset(offset)
    if not ack_wait > 0:
        raise errors.BadRequest("events", f"ack_wait must be positive, not {ack_wait}")
    if retry_limit is not None and retry_limit < 0:
        raise errors.BadRequest("events", f"retry_limit must not be negative, not {retry_limit}")


def check_group(group: str) -> None:
    """A group name: letters, digits, ``_ -``; at most 128 characters."""
    if not isinstance(group, str) or not _GROUP.fullmatch(group):
        raise errors.BadRequest(
            "events", f"invalid group {group!r}: letters, digits, '_' or '-' (at most 128)"
        )


def offset_time(offset: datetime.datetime) -> float:
    """A datetime offset as unix seconds (a naive one is taken as UTC)."""
    if offset.tzinfo is None:
        offset = offset.replace(tzinfo=datetime.UTC)
    return offset.timestamp()
