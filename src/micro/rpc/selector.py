"""Client-side node selection: round robin over healthy nodes, ejecting nodes that fail.

Lookups are cached briefly so a busy client does not ask the registry on every call;
a node that refused a connection is ejected for a while and the call retried on
another, so killing one instance of a service costs only the calls in flight on it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from micro import errors

__all__ = ["Lookup", "Selector"]

Lookup = Callable[[str, str], Awaitable[list[str]]]
"""Finds the node addresses of (service, namespace); raises NotFound for an unknown service."""


class _Entry:
    __slots__ = ("addresses", "expires", "next")

    def __init__(self, addresses: list[str], expires: float) -> None:
        self.addresses = addresses
        self.expires = expires
        self.next = 0


class Selector:
    """Picks a node for each call."""

    def __init__(self, lookup: Lookup, *, ttl: float = 5.0, eject_for: float = 10.0) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._eject_for = eject_for
        self._cache: dict[tuple[str, str], _Entry] = {}
        self._ejected: dict[str, float] = {}

    async def select(self, service: str, namespace: str, *, exclude: Iterable[str] = ()) -> str:
        """The next node of ``service``; raises ServiceUnavailable when none is usable."""
        key = (service, namespace)
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is None or entry.expires < now:
            addresses = await self._lookup(service, namespace)
            entry = _Entry(addresses, now + self._ttl)
            self._cache[key] = entry
        addresses = entry.addresses
        skip = set(exclude)
        count = len(addresses)
        fallback: str | None = None
        for _ in range(count):
            address = addresses[entry.next % count]
            entry.next += 1
            if address in skip:
                continue
            until = self._ejected.get(address)
            if until is None or until < now:
                return address
            fallback = fallback or address
        if fallback is not None:
            # Every node was ejected: trying one beats failing without trying.
            return fallback
        raise errors.ServiceUnavailable(service, f"no reachable node of service {service}")

    def eject(self, address: str) -> None:
        """Stop picking ``address`` for a while (it refused a connection)."""
        self._ejected[address] = time.monotonic() + self._eject_for
        for entry in self._cache.values():
            if address in entry.addresses:
                entry.expires = 0.0

    def invalidate(self, service: str | None = None) -> None:
        """Forget cached lookups (of one service, or all)."""
        if service is None:
            self._cache.clear()
        else:
            for key in [k for k in self._cache if k[0] == service]:
                del self._cache[key]
