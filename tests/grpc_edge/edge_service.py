"""edgetest: endpoints that show what the gRPC edge hands a service: the metadata and
deadline a call arrives with, a client stream, a slow answer and any error code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

import micro
from micro import errors
from micro.context import deadline_left, metadata


class Empty(msgspec.Struct):
    pass


class Seen(msgspec.Struct):
    metadata: dict[str, str]
    deadline_left: float | None


class Num(msgspec.Struct):
    n: int


class Total(msgspec.Struct):
    total: int
    count: int


class SleepRequest(msgspec.Struct):
    seconds: float


class FailRequest(msgspec.Struct):
    code: int
    detail: str


class Edge:
    async def echo(self, req: Empty) -> Seen:
        """The call's metadata and the time left before its deadline."""
        return Seen(metadata=metadata(), deadline_left=deadline_left())

    async def sum(self, nums: AsyncIterator[Num]) -> Total:
        """Add up a client stream."""
        total = count = 0
        async for num in nums:
            total += num.n
            count += 1
        return Total(total=total, count=count)

    async def sleep(self, req: SleepRequest) -> Empty:
        """Answer after a while."""
        await asyncio.sleep(req.seconds)
        return Empty()

    async def fail(self, req: FailRequest) -> Empty:
        """Fail with the error code asked for."""
        raise errors.new("edgetest.Edge.Fail", req.detail, req.code)


def main() -> None:
    service = micro.Service("edgetest")
    service.handle(Edge())
    service.run()


if __name__ == "__main__":
    main()
