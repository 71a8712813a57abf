"""A service for the gateway's tests: echoes what it receives, with the call's metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

import micro


class Item(msgspec.Struct):
    id: str


class EchoRequest(msgspec.Struct):
    name: str = ""
    count: int = 0
    tags: list[str] = []
    item: Item | None = None


class Echo:
    async def call(self, req: EchoRequest) -> dict[str, Any]:
        """Return the request and the metadata it came with."""
        return {"request": msgspec.to_builtins(req), "metadata": micro.context.metadata()}

    async def count(self, req: EchoRequest) -> AsyncIterator[dict[str, int]]:
        """Stream ``count`` numbers."""
        for i in range(req.count):
            yield {"n": i}

    async def sum(self, reqs: AsyncIterator[EchoRequest]) -> AsyncIterator[dict[str, int]]:
        """Bidi: the running sum of the counts sent."""
        total = 0
        async for req in reqs:
            total += req.count
            yield {"total": total}


if __name__ == "__main__":
    service = micro.Service("echo")
    service.handle(Echo())
    service.run()
