"""Service logs: one file per instance, rotated by size, and live followers.

The runtime reads each process's output through a pipe and writes it here, one line per
record (``<RFC 3339 time> <instance> <message>``), so ``tail -f`` works on the file and
``micro logs -f`` gets a line the moment it is printed, without polling the file.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections import deque
from pathlib import Path
from typing import IO, Final

from micro.runtime.base import LogRecord, LogStream

__all__ = ["LogFile", "LogHub", "read_tail"]

MAX_BYTES: Final = 10 * 1024 * 1024
"""A log file is rotated (to ``.1``, the old ``.1`` dropped) past this size."""

_FOLLOW_BUFFER: Final = 10_000
"""Lines a follower may fall behind by; past that, lines are dropped (and counted) rather
than letting a slow reader grow the server's memory."""


def _stamp(timestamp: float) -> str:
    at = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(line: str, version: str) -> LogRecord | None:
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) < 2:
        return None
    try:
        at = datetime.datetime.strptime(parts[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return LogRecord(
        timestamp=at.replace(tzinfo=datetime.UTC).timestamp(),
        message=parts[2] if len(parts) > 2 else "",
        metadata={"instance": parts[1], "version": version},
    )


class LogFile:
    """Appends records to one instance's file, rotating it past ``max_bytes``."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self._max = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8", errors="replace")
        self._size = self._file.tell()

    def write(self, record: LogRecord) -> None:
        """Append one record (flushed, so readers see it at once)."""
        line = f"{_stamp(record.timestamp)} {record.metadata.get('instance', '-')} "
        line += record.message.replace("\n", " ") + "\n"
        self._file.write(line)
        self._file.flush()
        self._size += len(line)
        if self._size > self._max:
            self._rotate()

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._file = self.path.open("a", encoding="utf-8", errors="replace")
        self._size = 0

    def close(self) -> None:
        """Close the file (records written so far stay)."""
        self._file.close()


def _last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of a file, read backwards in blocks (a log may be large)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            data = b""
            while end > 0 and data.count(b"\n") <= count:
                step = min(65536, end)
                end -= step
                f.seek(end)
                data = f.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:] if count else []


def read_tail(files: list[Path], count: int, version: str) -> list[LogRecord]:
    """The last ``count`` records across ``files`` (each with its rotated ``.1``), in time
    order."""
    records: list[LogRecord] = []
    for path in files:
        lines = _last_lines(path, count)
        if len(lines) < count:
            lines = _last_lines(path.with_name(path.name + ".1"), count - len(lines)) + lines
        records.extend(r for r in (_parse(line, version) for line in lines) if r is not None)
    records.sort(key=lambda r: r.timestamp)
    return records[-count:] if count else []


class _Follower(LogStream):
    def __init__(self, hub: LogHub, backlog: list[LogRecord], follow: bool, version: str) -> None:
        self._hub = hub
        self._version = version
        self._backlog = deque(backlog)
        self._follow = follow
        self._queue: asyncio.Queue[LogRecord | None] = asyncio.Queue(_FOLLOW_BUFFER)
        self.dropped = 0

    def offer(self, record: LogRecord | None) -> None:
        if record is not None and self._version and record.metadata.get("version") != self._version:
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    async def next(self) -> LogRecord:
        if self._backlog:
            return self._backlog.popleft()
        if not self._follow:
            raise StopAsyncIteration
        record = await self._queue.get()
        if record is None:
            self._follow = False
            raise StopAsyncIteration
        return record

    async def stop(self) -> None:
        self._hub.followers.discard(self)
        self._follow = False
        self._backlog.clear()
        self.offer(None)


class LogHub:
    """A service's live log: what its instances print reaches every follower at once."""

    def __init__(self) -> None:
        self.followers: set[_Follower] = set()

    def publish(self, record: LogRecord) -> None:
        """Hand a new record to every follower."""
        for follower in self.followers:
            follower.offer(record)

    def stream(self, backlog: list[LogRecord], *, follow: bool, version: str = "") -> LogStream:
        """The backlog, then (when following) every record published from now on (of
        ``version`` only, when given). Call it in the same loop turn as reading the
        backlog, so no line falls in between."""
        follower = _Follower(self, backlog, follow, version)
        if follow:
            self.followers.add(follower)
        return follower

    def close(self) -> None:
        """End every follower's stream (the service is gone)."""
        for follower in list(self.followers):
            follower.offer(None)
        self.followers.clear()
