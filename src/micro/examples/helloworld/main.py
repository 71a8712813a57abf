"""helloworld: the example service. Run it against a running server with ``python main.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

import micro


class CallRequest(msgspec.Struct):
    name: str


class CallResponse(msgspec.Struct):
    msg: str


class StreamRequest(msgspec.Struct):
    count: int


class StreamResponse(msgspec.Struct):
    count: int


class Ping(msgspec.Struct):
    stroke: int


class Pong(msgspec.Struct):
    stroke: int


class Helloworld:
    """Says hello, counts, and plays ping-pong."""

    async def call(self, req: CallRequest) -> CallResponse:
        """Greet someone by name."""
        return CallResponse(msg=f"Hello {req.name}")

    async def stream(self, req: StreamRequest) -> AsyncIterator[StreamResponse]:
        """Stream ``count`` messages numbered from 0."""
        for i in range(req.count):
            yield StreamResponse(count=i)

    async def ping_pong(self, pings: AsyncIterator[Ping]) -> AsyncIterator[Pong]:
        """Answer every stroke with the same stroke."""
        async for ping in pings:
            yield Pong(stroke=ping.stroke)


def main() -> None:
    service = micro.Service("helloworld")
    service.handle(Helloworld())
    service.run()


if __name__ == "__main__":
    main()
