"""Trace context: W3C ``traceparent`` in and out, and the span the current task is in.

A span's identity travels as ``traceparent`` (``00-<trace id>-<parent span id>-<flags>``,
https://www.w3.org/TR/trace-context/): in the native wire's metadata, in HTTP headers and
in gRPC metadata alike, and on events and broker messages (their metadata). Ids stay the
lower-case hex strings they travel as: nothing on the hot path converts them to numbers.

The current span is found in two places: an explicit one set with :func:`activate`
(consumers, subscribers, ``with micro.trace.span(...)``), else the one the server's
middleware left on the call being served (:func:`micro.context.current`), else the
served call's own ``traceparent`` (a server that does not trace). :func:`current_ids` is what :mod:`micro.log` asks.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar, Token
from typing import Final, NamedTuple

from micro.rpc import context as rpc_context

__all__ = [
    "TRACEPARENT",
    "Parent",
    "activate",
    "current",
    "current_ids",
    "deactivate",
    "format_parent",
    "new_span_id",
    "new_trace_id",
    "parse",
]

TRACEPARENT: Final = "traceparent"
"""The metadata key and HTTP header (lower case, as metadata keys are)."""

_VALID: Final = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16
_ODD: Final = "13579bdf"
"""Last hex digits of the flags with the ``sampled`` bit (0x01) set."""
_bits = random.getrandbits


class Parent(NamedTuple):
    """A span context: the trace, the span, and whether the trace is sampled."""

    trace_id: str
    span_id: str
    sampled: bool


Active = tuple[str, str, bool]
"""The current span as the context variable holds it: a :class:`Parent`, or the plain
tuple the server's middleware sets (a NamedTuple costs it more than a tuple)."""

_active: ContextVar[Active | None] = ContextVar("micro_trace_span", default=None)

SERVING: Final = "micro.trace"
"""The key of ``Call.values`` under which the server's middleware leaves the span of the
call it serves (an :data:`Active`): cheaper than setting a context variable per call."""


def new_trace_id() -> str:
    """32 random hex digits (never all zeros, which W3C reserves for "invalid").

    Ids come from :mod:`random` (seeded from the OS), not from a cryptographic source: an
    id only has to be unique, and guessing one gains nothing, as traces are kept per
    namespace. It is five times cheaper, and every call makes one."""
    return (_bits(128) or 1).to_bytes(16, "little").hex()


def new_span_id() -> str:
    """16 random hex digits (never all zeros). (``to_bytes().hex()``: the cheapest way
    from random bits to hex digits, a third of ``"%016x" %``'s cost.)"""
    return (_bits(64) or 1).to_bytes(8, "little").hex()


def parse(value: str | None) -> Parent | None:
    """The span context a ``traceparent`` names; ``None`` for an absent or malformed one
    (a caller's garbage starts a new trace rather than failing the call)."""
    if value is None or len(value) != 55 or _VALID.fullmatch(value) is None:
        return None
    trace_id = value[3:35]
    span_id = value[36:52]
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return Parent(trace_id, span_id, value[54] in _ODD)


def format_parent(trace_id: str, span_id: str, sampled: bool = True) -> str:
    """The ``traceparent`` naming ``span_id`` of ``trace_id``."""
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def activate(parent: Parent | None) -> Token[Active | None]:
    """Make ``parent`` the current span of this task (and the tasks it starts); undo with
    :func:`deactivate`."""
    return _active.set(parent)


def deactivate(token: Token[Active | None]) -> None:
    """Undo an :func:`activate`."""
    _active.reset(token)


def current() -> Parent | None:
    """The span this task is in: an activated one, else the served call's; ``None``
    outside any trace."""
    active = _active.get()
    if active is None:
        call = rpc_context.current()
        if call is None:
            return None
        active = call.values.get(SERVING)
        if active is None:
            return parse(call.metadata.get(TRACEPARENT))
    return active if isinstance(active, Parent) else Parent(*active)


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span, for logs; ``None`` outside a trace."""
    found = current()
    return None if found is None else (found.trace_id, found.span_id)
