"""Change notices between the replicas of one platform, over its broker.

Several ``micro server`` replicas share one store, so what one changes (a config value, an
auth rule) is already visible to the others; what they lack is the nudge that tells their
own watchers to look again. A :class:`Peers` sends that nudge: "namespace X of kind K
changed", published on the broker, and heard by every other replica. A notice carries no
data, only where to look, so a lost, repeated or forged one costs at most a re-read.

With the embedded broker there is only this process to hear it, and notices from this
process are ignored (its own watchers were told directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from micro import errors
from micro.broker.base import Broker, Message

__all__ = ["Peers"]

log = logging.getLogger("micro.peers")

_TOPIC: Final = "micro.peers."
_RETRY: Final = 1.0
"""Seconds between attempts to subscribe again after the broker failed."""


class Peers:
    """Announces and hears changes of shared state, by kind (``config``, ``rules``)."""

    def __init__(self, broker: Broker, replica: str) -> None:
        self._broker = broker
        self.replica = replica
        self._tasks: list[asyncio.Task[None]] = []

    async def announce(self, kind: str, namespace: str) -> None:
        """Tell the other replicas that ``namespace``'s ``kind`` changed. Best effort: the
        change itself is stored already, and a replica that misses it re-reads on its
        next change."""
        notice = Message(header={"replica": self.replica, "namespace": namespace})
        try:
            await self._broker.publish(_TOPIC + kind, notice, namespace="micro")
        except errors.MicroError as exc:
            log.warning("cannot tell the other replicas that %s changed: %s", kind, exc.detail)

    def listen(self, kind: str, changed: Callable[[str], object]) -> None:
        """Call ``changed(namespace)`` for every notice of ``kind`` from another replica
        (awaited when it returns an awaitable), until :meth:`close`."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._listen(kind, changed)))

    async def _listen(self, kind: str, changed: Callable[[str], object]) -> None:
        while True:
            try:
                async with self._broker.subscribe(_TOPIC + kind, namespace="micro") as notices:
                    async for notice in notices:
                        if notice.header.get("replica") == self.replica:
                            continue
                        result = changed(notice.header.get("namespace", ""))
                        if asyncio.iscoroutine(result):
                            await result
            except errors.MicroError as exc:
                log.warning("not hearing %s changes from other replicas: %s", kind, exc.detail)
            await asyncio.sleep(_RETRY)

    async def close(self) -> None:
        """Stop listening."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
