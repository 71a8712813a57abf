"""The handler the RPC tests serve, and a Server that lets tests watch its connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from micro import errors
from micro.rpc import Client, Server, context
from micro.wire.connection import Connection
from micro.wire.stream import DEFAULT_WINDOW

SERVICE = "greeter"


class Req(msgspec.Struct):
    name: str
    count: int = 1


class Resp(msgspec.Struct):
    msg: str


class Probe:
    """What the handler saw and did, with events a test can await instead of sleeping."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.finished = asyncio.Event()
        self.reached = asyncio.Event()
        self.mark = DEFAULT_WINDOW + 1
        self.produced = 0
        self.deadline_left: float | None = None


class Greeter:
    """The test handler: one endpoint per behaviour under test."""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe
        self.client: Client | None = None
        """Set by tests that need the handler to call onwards."""

    async def hello(self, req: Req) -> Resp:
        return Resp(f"hello {req.name}")

    async def meta(self) -> dict[str, str]:
        return dict(context.metadata())

    async def deadline(self) -> float:
        left = context.deadline_left()
        self._probe.deadline_left = left
        return -1.0 if left is None else left

    async def relay(self) -> dict[str, Any]:
        """Call Greeter.Deadline and Greeter.Meta onwards, as a service calling another."""
        assert self.client is not None
        mine = context.deadline_left()
        theirs = await self.client.call(SERVICE, "Greeter.Deadline", timeout=60.0)
        meta = await self.client.call(SERVICE, "Greeter.Meta")
        return {"mine": mine, "theirs": theirs, "meta": meta}

    async def block(self, req: Req) -> Resp:
        probe = self._probe
        probe.started.set()
        try:
            await probe.release.wait()
        except asyncio.CancelledError:
            probe.cancelled.set()
            raise
        finally:
            probe.finished.set()
        return Resp(f"released {req.name}")

    async def missing(self, req: Req) -> Resp:
        raise errors.NotFound("greeter.missing", f"no greeting for {req.name}")

    async def broken(self, req: Req) -> Resp:
        raise ValueError("boom")

    async def count(self, req: Req) -> AsyncIterator[Resp]:
        for i in range(req.count):
            yield Resp(f"{req.name} {i}")

    async def doomed(self, req: Req) -> AsyncIterator[Resp]:
        yield Resp("first")
        raise errors.Forbidden("greeter.doomed", f"{req.name} may not see more")

    async def flood(self, req: Req) -> AsyncIterator[int]:
        probe = self._probe
        for i in range(req.count):
            probe.produced = i + 1
            if probe.produced == probe.mark:
                probe.reached.set()
            yield i

    async def endless(self, req: Req) -> AsyncIterator[int]:
        probe = self._probe
        probe.started.set()
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            probe.finished.set()

    async def trickle(self, req: Req) -> AsyncIterator[int]:
        probe = self._probe
        try:
            yield 0
            await probe.release.wait()  # parked between messages, not on flow control
            yield 1
        except asyncio.CancelledError:
            probe.cancelled.set()
            raise
        finally:
            probe.finished.set()

    async def gated_total(self, reqs: AsyncIterator[Req]) -> int:
        await self._probe.release.wait()  # read nothing until the test says so
        return sum([r.count async for r in reqs])

    async def total(self, reqs: AsyncIterator[Req]) -> Resp:
        names = [r.name async for r in reqs]
        return Resp(",".join(names))

    async def first(self, reqs: AsyncIterator[Req]) -> Resp:
        async for r in reqs:
            return Resp(r.name)
        return Resp("")

    async def head(self, reqs: AsyncIterator[Req]) -> AsyncIterator[Resp]:
        async for r in reqs:
            yield Resp(r.name)
            return

    async def upper(self, reqs: AsyncIterator[Req]) -> AsyncIterator[Resp]:
        async for r in reqs:
            for _ in range(r.count):
                yield Resp(r.name.upper())


class WatchedServer(Server):
    """A Server that lets tests see its connections come and go."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accepted: list[Connection] = []
        self.lost_count = 0
        self.changed = asyncio.Event()

    def connection_made(self, conn: Connection) -> None:
        super().connection_made(conn)
        self.accepted.append(conn)
        self.changed.set()

    def connection_lost(self, conn: Connection) -> None:
        super().connection_lost(conn)
        self.lost_count += 1
        self.changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, waking on each connection change (callers bound
        the time with ``asyncio.timeout``)."""
        for _ in range(1000):
            if predicate():
                return
            self.changed.clear()
            await self.changed.wait()
        raise AssertionError("the server's connections never reached the expected state")
