"""Throttling of wrong secrets, per account.

After :data:`MAX_FAILURES` wrong secrets within :data:`WINDOW` seconds, every attempt for
that account is refused for a backoff (30 s, doubling with each lock, at most 15 min),
even with the right secret; a success clears the account's record. A quiet spell as long
as the longest backoff forgets earlier locks. State is per process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from micro import errors

__all__ = ["BACKOFF", "MAX_BACKOFF", "MAX_FAILURES", "TOO_MANY_REQUESTS", "WINDOW", "Throttle"]

MAX_FAILURES: Final = 5
WINDOW: Final = 300.0
BACKOFF: Final = 30.0
MAX_BACKOFF: Final = 900.0
TOO_MANY_REQUESTS: Final = 429


@dataclass(slots=True)
class _Strikes:
    failures: list[float] = field(default_factory=list)
    locks: int = 0
    until: float = 0.0
    last: float = 0.0


class Throttle:
    """Counts failures by key (``(namespace, account id)``) and refuses locked keys."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._strikes: dict[tuple[str, str], _Strikes] = {}

    def check(self, key: tuple[str, str], error_id: str) -> None:
        """Raise a 429 saying how long to wait while ``key`` is locked."""
        strikes = self._strikes.get(key)
        if strikes is None:
            return
        wait = strikes.until - self._clock()
        if wait > 0:
            raise errors.new(
                error_id,
                f"too many failed login attempts; try again in {math.ceil(wait)}s",
                TOO_MANY_REQUESTS,
            )

    def failed(self, key: tuple[str, str]) -> bool:
        """Count a wrong secret; True when it locks the key."""
        now = self._clock()
        self._prune(now)
        strikes = self._strikes.setdefault(key, _Strikes())
        if now - strikes.last > MAX_BACKOFF + WINDOW:
            strikes.locks = 0
        strikes.last = now
        strikes.failures = [t for t in strikes.failures if now - t < WINDOW]
        strikes.failures.append(now)
        if len(strikes.failures) < MAX_FAILURES:
            return False
        strikes.failures.clear()
        strikes.until = now + min(BACKOFF * 2**strikes.locks, MAX_BACKOFF)
        strikes.locks += 1
        return True

    def succeeded(self, key: tuple[str, str]) -> None:
        """Forget the key's failures and locks."""
        self._strikes.pop(key, None)

    def _prune(self, now: float) -> None:
        # Bounded memory: records with nothing left to remember go.
        if len(self._strikes) < 1024:
            return
        stale = [
            key
            for key, s in self._strikes.items()
            if now - s.last > MAX_BACKOFF + WINDOW and s.until <= now
        ]
        for key in stale:
            del self._strikes[key]
