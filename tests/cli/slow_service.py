"""A service that answers after a while: for the CLI's timeout tests."""

from __future__ import annotations

import asyncio

import msgspec

import micro


class SleepRequest(msgspec.Struct):
    seconds: float


class SleepResponse(msgspec.Struct):
    slept: float


class Slow:
    async def sleep(self, req: SleepRequest) -> SleepResponse:
        await asyncio.sleep(req.seconds)
        return SleepResponse(req.seconds)


def main() -> None:
    service = micro.Service("slow")
    service.handle(Slow())
    service.run()


if __name__ == "__main__":
    main()
