"""Taking work off a queue in batches: what the SQLite threads (store and events) share.

A thread that commits once per batch takes the job it waited for and whatever else is
queued at that moment, up to a limit, so concurrent callers share one commit.
"""

from __future__ import annotations

import queue
from typing import TypeVar

__all__ = ["take_batch"]

T = TypeVar("T")


def take_batch(jobs: queue.SimpleQueue[T], first: T, stop: T, limit: int) -> tuple[list[T], bool]:
    """``first`` and the jobs queued behind it (at most ``limit`` in all), and whether the
    ``stop`` marker came among them (it ends the batch and is not part of it)."""
    if first is stop:
        return [], True
    batch = [first]
    while len(batch) < limit:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is stop:
            return batch, True
        batch.append(job)
    return batch, False
