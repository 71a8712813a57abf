"""Throttling of wrong secrets, per account and client address.

After :data:`MAX_FAILURES` wrong secrets within :data:`WINDOW` seconds from one address,
every attempt for that account from that address is refused for a backoff (30 s,
doubling with each lock, at most 15 min), even with the right secret; a success clears
the record. Keyed by the address too, so that guessing from one place never locks the
account's owner out elsewhere. A quiet spell as long as the longest backoff forgets
earlier locks. State is per process, and bounded: past :data:`MAX_RECORDS` records, the
ones that lock nothing go.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from micro import errors

__all__ = [
    "BACKOFF",
    "MAX_BACKOFF",
    "MAX_FAILURES",
    "MAX_RECORDS",
    "TOO_MANY_REQUESTS",
    "WINDOW",
    "Key",
    "Throttle",
]

MAX_FAILURES: Final = 5
WINDOW: Final = 300.0
BACKOFF: Final = 30.0
MAX_BACKOFF: Final = 900.0
TOO_MANY_REQUESTS: Final = 429
MAX_RECORDS: Final = 100_000

Key = tuple[str, str, str]
"""(namespace, account id, client address)."""


@dataclass(slots=True)
class _Strikes:
    failures: list[float] = field(default_factory=list)
    locks: int = 0
    until: float = 0.0
    last: float = 0.0


class Throttle:
    """Counts failures by :data:`Key` and refuses locked keys."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._strikes: dict[Key, _Strikes] = {}

    def check(self, key: Key, error_id: str) -> None:
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

    def failed(self, key: Key) -> bool:
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

    def succeeded(self, key: Key) -> None:
        """Forget the key's failures and locks."""
        self._strikes.pop(key, None)

    def forget(self, namespace: str, id: str) -> None:
        """Forget an account's records, from every address (it was deleted)."""
        for key in [k for k in self._strikes if k[0] == namespace and k[1] == id]:
            del self._strikes[key]

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
        if len(self._strikes) > MAX_RECORDS:  # a flood of names: keep only what locks
            self._strikes = {k: s for k, s in self._strikes.items() if s.until > now}
