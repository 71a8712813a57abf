"""Circuit breakers: stop calling what keeps failing, then try it again with one call.

A breaker is *closed* (calls go), *open* (calls fail fast, without trying) or *half-open*
(one probe call goes; its success closes the breaker, its failure opens it again). The
router keeps one per node (a node that refuses connections is ejected at once; other
failures open it after ``failures`` in a row) and one per service (``failures`` failed
answers in a row, whichever nodes gave them, open it: a dependency that keeps failing is
not called again and again while it recovers). A connection lost or refused is one
node's trouble and counts on its breaker only: a crashed process drops every call in
flight on it at once, which says nothing of the other nodes; with every node's breaker
open the service fails fast all the same.

What counts as a failure is :func:`counts`: the node could not be reached or lost the
call, timed out, or answered 500/502/503/504. A 4xx is the caller's fault, never the
callee's, and never opens a breaker.
"""

from __future__ import annotations

from typing import Final

from micro import errors

__all__ = ["Breaker", "CircuitOpen", "counts"]

_COUNTED: Final = frozenset({408, 500, 502, 503, 504})


def counts(exc: errors.MicroError) -> bool:
    """Whether ``exc`` says something about the health of whoever was called."""
    return isinstance(exc, errors.ConnectionError) or exc.code in _COUNTED


class CircuitOpen(errors.ServiceUnavailable):
    """A call not made because the breaker of its service (or of every node) is open."""

    def __init__(self, service: str, breaker: str, detail: str) -> None:
        super().__init__(service, detail)
        self.breaker = breaker
        """Which breaker: ``service <name>`` or ``node <address>``."""


class Breaker:
    """One breaker's state; times are the caller's monotonic clock."""

    __slots__ = ("failures", "opened_until", "probing")

    def __init__(self) -> None:
        self.failures = 0
        """Failures in a row."""
        self.opened_until = 0.0
        """While open, until when; 0 while closed."""
        self.probing = False
        """Half-open and its probe is out."""

    def allows(self, now: float) -> bool:
        """Whether a call may go now; past the open time the first call to ask is the
        probe (and another after another open time, if that one never reported)."""
        until = self.opened_until
        return until == 0.0 or now >= until

    def taken(self, now: float, open_for: float) -> None:
        """A call went, as allowed: when that makes it the probe, no other until it
        reports (or for another ``open_for`` if it never does)."""
        if self.opened_until != 0.0 and now >= self.opened_until:
            self.probing = True
            self.opened_until = now + open_for

    def succeeded(self) -> None:
        """Closed again."""
        self.failures = 0
        self.opened_until = 0.0
        self.probing = False

    def failed(self, now: float, threshold: int, open_for: float, *, at_once: bool = False) -> bool:
        """Count a failure; True when this opened the breaker."""
        self.failures += 1
        if self.probing or at_once or self.failures >= threshold:
            opening = self.opened_until == 0.0 or self.probing
            self.opened_until = now + open_for
            self.probing = False
            return opening
        return False

    def retry_in(self, now: float) -> float:
        """Seconds until the next probe may go."""
        return max(0.0, self.opened_until - now)
