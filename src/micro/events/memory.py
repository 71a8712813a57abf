"""The in-memory event stream (the ``test`` profile): the SQLite engine on a memory
database, so it behaves exactly as the durable one, and forgets everything on close."""

from __future__ import annotations

from micro.events._sql import SQLStream

__all__ = ["MemoryStream"]


class MemoryStream(SQLStream):
    """Events in memory; same semantics as :class:`~micro.events.sqlite.SQLiteStream`."""

    name = "memory"

    def __init__(
        self,
        *,
        max_age: float | None = None,
        max_events: int | None = None,
        sweep_interval: float = 60.0,
    ) -> None:
        super().__init__(
            None, max_age=max_age, max_events=max_events, sweep_interval=sweep_interval
        )

    def __repr__(self) -> str:
        return "MemoryStream()"
