"""A cache bounded by bytes: what callers can grow by sending distinct keys never exceeds
its budget.

Caches keyed by what arrives from the network (tokens, namespaces, service names, origins)
can otherwise be grown by a caller who sends a new key each time; counting entries is not
enough, since one key can be megabytes. Each entry is charged the size its owner gives
(typically the length of the key's text); past the budget the cache starts again empty,
which costs a few misses and no more memory than the budget.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["BoundedDict", "text_size"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_ENTRY: int = 120
"""What an entry costs besides its key's text: the dict slot, the value object's share."""


def text_size(key: object) -> int:
    """The bytes a key made of strings (or a tuple of them) is charged."""
    if isinstance(key, str | bytes):
        return len(key) + _ENTRY
    if isinstance(key, tuple):
        return sum(len(part) for part in key if isinstance(part, str | bytes)) + _ENTRY
    return _ENTRY


class BoundedDict(dict[K, V]):
    """A dict that empties itself when the bytes charged for its entries pass ``budget``.

    Reads are plain dict reads (a door reads on every call); only :meth:`set` counts.
    Entries added with ``d[key] = value`` are not charged: use :meth:`set`.
    """

    __slots__ = ("_bytes", "budget")

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self._bytes = 0

    def set(self, key: K, value: V, size: int | None = None) -> None:
        """Keep ``value`` under ``key``, charged ``size`` bytes (default: the key's text).
        An entry larger than the whole budget is not kept at all."""
        cost = text_size(key) if size is None else size
        if cost > self.budget:
            return
        if key not in self:
            if self._bytes + cost > self.budget:
                self.clear()
            self._bytes += cost
        self[key] = value

    def clear(self) -> None:
        """Forget everything."""
        super().clear()
        self._bytes = 0
