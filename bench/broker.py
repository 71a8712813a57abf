"""Broker fan-out: N messages to 10 subscribers, delivered messages per second.

    .venv/bin/python bench/broker.py [--runs 3] [--messages 5000]

Three ways, same shape (10 subscribers of one topic, one publisher, the clock runs from
the first publish until every subscriber has every message):

* ``nats-py raw``: nats-py core pub/sub directly (callbacks counting), the baseline;
* ``NatsBroker``: our NATS broker (each subscriber a :class:`Subscriber` read with
  ``async for``), against the same NATS server;
* ``memory over RPC``: our :class:`RPCBroker` against a real ``micro.rpc.Server`` (in
  this process, on loopback) hosting the broker handler over a :class:`MemoryBroker`;
  publishes go 32 at a time (each is a round trip).

Medians of ``--runs``. Needs NATS at nats://127.0.0.1:4222 (skipped, and said so, without).
Bounded: every wait is under a timeout; the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import median_of, print_table, write_results
from micro.broker.base import Broker, Message, Subscriber
from micro.broker.client import RPCBroker
from micro.broker.handler import Broker as BrokerHandler
from micro.broker.memory import MemoryBroker
from micro.rpc import Client, Server, endpoints_of

NATS_URL = "nats://127.0.0.1:4222"
SUBSCRIBERS = 10
BODY = b"x" * 100
WAIT = 20.0


async def _fan_out(broker: Broker, messages: int, concurrency: int) -> dict[str, float]:
    ns = f"bench{uuid.uuid4().hex[:8]}"
    subs: list[Subscriber] = [broker.subscribe("fan", namespace=ns) for _ in range(SUBSCRIBERS)]
    for sub in subs:
        await sub.__aenter__()

    async def drain(sub: Subscriber) -> None:
        n = 0
        async for _ in sub:
            n += 1
            if n == messages:
                return

    readers = [asyncio.create_task(drain(sub)) for sub in subs]
    message = Message(body=BODY)
    start = time.perf_counter()

    async def publisher(share: int) -> None:
        for _ in range(share):
            await broker.publish("fan", message, namespace=ns)

    shares = [messages // concurrency + (i < messages % concurrency) for i in range(concurrency)]
    try:
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(publisher(s) for s in shares))
            await asyncio.gather(*readers)
        elapsed = time.perf_counter() - start
    finally:
        for task in readers:
            task.cancel()
        for sub in subs:
            await sub.stop()
    return {"delivered/s": messages * SUBSCRIBERS / elapsed, "seconds": elapsed}


async def _raw_nats(messages: int) -> dict[str, float]:
    import nats

    nc = await nats.connect(NATS_URL)
    subject = f"bench.raw.{uuid.uuid4().hex[:8]}"
    done = asyncio.get_running_loop().create_future()
    counts = [0] * SUBSCRIBERS
    finished = 0

    def counter(i: int) -> Any:
        async def cb(msg: Any) -> None:
            nonlocal finished
            counts[i] += 1
            if counts[i] == messages:
                finished += 1
                if finished == SUBSCRIBERS and not done.done():
                    done.set_result(None)

        return cb

    for i in range(SUBSCRIBERS):
        await nc.subscribe(subject, cb=counter(i))
    await nc.flush()
    start = time.perf_counter()
    try:
        async with asyncio.timeout(WAIT):
            for _ in range(messages):
                await nc.publish(subject, BODY)
            await done
        elapsed = time.perf_counter() - start
    finally:
        await nc.close()
    return {"delivered/s": messages * SUBSCRIBERS / elapsed, "seconds": elapsed}


async def _have_nats() -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 4222), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def main(runs: int, messages: int) -> None:
    rows: list[dict[str, object]] = []
    baseline = 0.0
    if await _have_nats():
        from micro.broker.nats import NatsBroker

        med, _ = await median_of(runs, lambda: _raw_nats(messages))
        baseline = med["delivered/s"]
        rows.append({"target": "nats-py raw (baseline)", "messages": messages, **med})
        nats_broker = NatsBroker(NATS_URL, prefix=f"bench-{uuid.uuid4().hex[:8]}")
        try:
            med, _ = await median_of(runs, lambda: _fan_out(nats_broker, messages, 1))
        finally:
            await nats_broker.close()
        rows.append({"target": "NatsBroker", "messages": messages, **med})
    else:
        print(f"NATS not reachable at {NATS_URL}: NATS rows skipped", file=sys.stderr)

    backend = MemoryBroker()
    server = Server()
    server.add("broker", endpoints_of(BrokerHandler(backend)))
    address = await server.start("127.0.0.1:0")
    client = Client(proxy=str(address))
    try:
        rpc = RPCBroker(client)
        med, _ = await median_of(runs, lambda: _fan_out(rpc, messages, 32))
        rows.append({"target": "memory over RPC", "messages": messages, **med})
    finally:
        await client.close()
        await server.stop(grace=1)
        await backend.close()

    for row in rows:
        rate = row["delivered/s"]
        row["vs raw"] = round(rate / baseline, 2) if baseline and isinstance(rate, float) else None
    print_table(f"broker fan-out to {SUBSCRIBERS} subscribers (medians of {runs})", rows)
    write_results("broker", {"rows": rows})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.messages))
