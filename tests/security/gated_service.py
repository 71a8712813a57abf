"""The service of the oversize attacks: calls that wait at a gate (so they are in flight
while the attack runs), and endpoints that take or give any size."""

from __future__ import annotations

import asyncio

import msgspec

import micro


class Data(msgspec.Struct):
    data: str = ""


class Size(msgspec.Struct):
    size: int = 0


class Gated:
    def __init__(self) -> None:
        self._gate = asyncio.Event()
        self._waiting = 0

    async def wait(self) -> Size:
        """Wait until :meth:`open`; answers how many were waiting."""
        self._waiting += 1
        await self._gate.wait()
        return Size(self._waiting)

    async def waiting(self) -> Size:
        return Size(self._waiting)

    async def open(self) -> Size:
        self._gate.set()
        return Size(self._waiting)

    async def measure(self, req: Data) -> Size:
        return Size(len(req.data))

    async def answer(self, req: Size) -> Data:
        return Data("x" * req.size)


if __name__ == "__main__":
    service = micro.Service("gated")
    service.handle(Gated())
    service.run()
