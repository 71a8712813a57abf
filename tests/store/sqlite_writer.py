"""Writes records to an SQLite store forever, printing each key once its write returned.

    python sqlite_writer.py DIRECTORY

The durability test kills this process mid-stream and checks every printed key is there.
Eight writers run at once, so acknowledgements come out of group commits.
"""

from __future__ import annotations

import asyncio
import sys

from micro.store.base import Record
from micro.store.sqlite import SQLiteStore


async def main(directory: str) -> None:
    store = SQLiteStore(directory)

    async def writer(number: int) -> None:
        for i in range(1_000_000):
            key = f"w{number}-{i:07d}"
            await store.write(
                Record(key=key, value=key.encode() * 8), database="durable", table="t"
            )
            sys.stdout.write(key + "\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(n) for n in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
