"""The SQLite event stream: the embedded default, durable once ``publish`` returns.

One database file ``events.db`` in a folder (``$MICRO_HOME/server/events`` for the server),
WAL mode with ``synchronous = FULL`` and group commit (see :mod:`micro.events._sql`). Group
positions and unacknowledged deliveries are tables too, so they survive a restart.
Retention: ``max_age`` (seconds, by event timestamp) and ``max_events`` (per topic),
applied by a sweep every ``sweep_interval`` seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from micro.events._sql import SQLStream

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["SQLiteStream"]


class SQLiteStream(SQLStream):
    """Events in ``<directory>/events.db`` (the folder is made, mode 0700, on first use)."""

    name = "sqlite"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_age: float | None = None,
        max_events: int | None = None,
        sweep_interval: float = 60.0,
    ) -> None:
        self.directory = Path(directory)
        super().__init__(
            self.directory / "events.db",
            max_age=max_age,
            max_events=max_events,
            sweep_interval=sweep_interval,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SQLiteStream:
        """The server's stream: ``$MICRO_HOME/server/events``."""
        return cls(settings.home / "server" / "events")

    def __repr__(self) -> str:
        return f"SQLiteStream({str(self.directory)!r})"
