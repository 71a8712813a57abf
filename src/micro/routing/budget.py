"""A retry budget: retries may add at most a fixed share of load to a service.

Without one, retries multiply load exactly when a service is struggling (every caller
retrying three times turns a brownout into an outage). The budget is a token bucket per
service called: each call deposits ``ratio`` of a token (0.1: retries may add 10 %),
each retry withdraws one, and a small ``floor`` of tokens refilled over time lets a
caller that makes few calls still retry now and then. A retry with no token is not made:
the call fails with the error of its last attempt.

Retries of connections refused before anything was sent are not charged: they cost the
service nothing.
"""

from __future__ import annotations

import time

__all__ = ["RetryBudget"]


class RetryBudget:
    """A token bucket: ``ratio`` tokens per call, ``floor`` tokens at most from the clock,
    refilled at ``floor`` per ``window`` seconds."""

    __slots__ = ("_cap", "_from_calls", "_from_clock", "_last", "floor", "ratio", "window")

    def __init__(self, ratio: float = 0.1, floor: float = 10.0, window: float = 10.0) -> None:
        self.ratio = ratio
        self.floor = floor
        self.window = window
        self._from_calls = 0.0
        self._from_clock = floor
        self._last = time.monotonic()
        # Capped, so a long quiet success cannot bank an unbounded burst of retries.
        self._cap = max(floor, 100 * ratio)

    def deposit(self) -> None:
        """One call was made (its first attempt)."""
        banked = self._from_calls + self.ratio
        self._from_calls = banked if banked < self._cap else self._cap

    def withdraw(self) -> bool:
        """Take a token for one retry; False when there is none left."""
        now = time.monotonic()
        if self.window > 0:
            refill = (now - self._last) * self.floor / self.window
            self._from_clock = min(self.floor, self._from_clock + refill)
        self._last = now
        if self._from_calls >= 1.0:
            self._from_calls -= 1.0
            return True
        if self._from_clock >= 1.0:
            self._from_clock -= 1.0
            return True
        return False

    @property
    def balance(self) -> float:
        """Tokens left (what a retry now would find, without the clock's refill)."""
        return self._from_calls + self._from_clock
