"""The call being served: its metadata and deadline, visible to handler code.

A handler reads ``micro.context.metadata()`` to see the caller's metadata (gateway
headers arrive here) and ``micro.context.caller()`` to see who the caller is (the
account the service's door verified; never a token, which the door takes out), and calls
it makes to other services inherit what should travel: the remaining deadline, the
namespace and the trace.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from micro.auth.base import Account

__all__ = ["PROPAGATED", "Call", "caller", "current", "deadline_left", "metadata", "namespace"]

PROPAGATED: Final = ("micro-namespace", "traceparent", "tracestate")
"""Metadata keys that calls made while serving a call carry on."""


@dataclass(slots=True)
class Call:
    """An incoming call as the server and its middleware see it."""

    service: str
    endpoint: str
    metadata: dict[str, str]
    content_type: str
    request: Any = None
    deadline: float | None = None
    """Loop time by which the caller wants an answer; ``None`` for no deadline."""
    stream: bool = False
    peer: str = ""
    account: Any = None
    """Set by the server's door: the verified caller's account (``None`` = anonymous)."""
    checked: bool = False
    """True once a door admitted the call; handlers enforce namespaces only then (a bare
    server, as in the conformance suites, has no door and no accounts)."""
    values: dict[str, Any] = field(default_factory=dict)
    """Free space for middleware to hand things to the handler."""


_current: ContextVar[Call | None] = ContextVar("micro_call", default=None)


def current() -> Call | None:
    """The call this task is serving, or ``None`` outside a handler."""
    return _current.get()


def metadata() -> dict[str, str]:
    """The metadata of the call being served (empty outside a handler)."""
    call = _current.get()
    return call.metadata if call is not None else {}


def caller() -> Account | None:
    """Who made the call being served, as the door verified it: the account (id,
    namespace as ``issuer``, type, scopes), or ``None`` for an anonymous caller, outside a
    handler, or on a server without a door."""
    call = _current.get()
    account = call.account if call is not None else None
    return account if isinstance(account, Account) else None


def namespace(default: str = "micro") -> str:
    """The namespace of the call being served."""
    return metadata().get("micro-namespace") or default


def deadline_left() -> float | None:
    """Seconds left before the served call's deadline, or ``None``."""
    call = _current.get()
    if call is None or call.deadline is None:
        return None
    return call.deadline - asyncio.get_running_loop().time()


def _set(call: Call) -> None:
    _current.set(call)
