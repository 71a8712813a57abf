"""The NATS and Redis event streams against the raw clients doing the same, side by side.

    .venv/bin/python bench/events.py [--runs 3] [--events 3000]

Targets (issue "Events"): NatsStream and RedisStream at >= 0.7x raw nats-py JetStream /
raw redis.asyncio Streams. Two measures, each the median of ``--runs``:

* publish: acked publishes per second, ``CONCURRENCY`` publishers at once (ours: ``publish``;
  raw: ``js.publish`` to a stream of one subject / ``XADD`` with an auto id);
* end to end: a consumer (a new group, acking every event) is started, then the events are
  published as above; events per second until the consumer has acked all of them (raw: a
  durable pull consumer fetching batches of 256 and acking each / XREADGROUP COUNT 256 and
  XACK each).

A backend that is not reachable is skipped with the reason. Everything runs in this one
process on the same event loop; each run uses fresh streams, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import median_of, print_table, write_results

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
CONCURRENCY = 32
PAYLOAD = b"p" * 100
BATCH = 256


async def _publish_all(n: int, publish: Callable[[int], Awaitable[Any]]) -> None:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await publish(i)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _timed_publish(n: int, publish: Callable[[int], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await _publish_all(n, publish)
    return n / (time.perf_counter() - start)


async def _timed_e2e(
    n: int,
    publish: Callable[[int], Awaitable[Any]],
    consume: Callable[[int], Coroutine[Any, Any, None]],
) -> float:
    start = time.perf_counter()
    consumer = asyncio.create_task(consume(n))
    await _publish_all(n, publish)
    await asyncio.wait_for(consumer, 60)
    return n / (time.perf_counter() - start)


# --------------------------------------------------------------------------- ours


async def ours_nats(n: int) -> dict[str, float]:
    from micro.events.nats import NatsStream

    stream = NatsStream(NATS_URL, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        return await _ours(stream, n)
    finally:
        await stream.delete_all()
        await stream.close()


async def ours_redis(n: int) -> dict[str, float]:
    from micro.events.redis import RedisStream

    stream = RedisStream(REDIS_URL, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        return await _ours(stream, n)
    finally:
        await stream.delete_all()
        await stream.close()


async def _ours(stream: Any, n: int) -> dict[str, float]:
    pub = await _timed_publish(n, lambda i: stream.publish("pub", PAYLOAD))
    await stream.publish("e2e", PAYLOAD)  # sequence 1: the consumer starts at 2

    async def consume(count: int) -> None:
        async with stream.consume("e2e", group="g", offset=2, auto_ack=False) as consumer:
            for _ in range(count):
                delivery = await consumer.next()
                await delivery.ack()

    e2e = await _timed_e2e(n, lambda i: stream.publish("e2e", PAYLOAD), consume)
    return {"publish": pub, "e2e": e2e}


async def ours_sqlite_rpc(n: int) -> dict[str, float]:
    """The embedded default, durable, through RPC: a real ``micro server`` (SQLite events)
    and this process as the publishing and the consuming service."""
    import os
    import tempfile

    from micro.auth.client import RPCAuth
    from micro.events.client import RPCStream
    from micro.rpc import Client

    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(
        MICRO_HOME=tempfile.mkdtemp(prefix="micro-bench-events-"),
        MICRO_PROXY_ADDRESS="127.0.0.1:0",
        MICRO_LOG_LEVEL="warning",
        MICRO_ADMIN_PASSWORD="bench",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "micro", "server", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        proxy = ""
        while not proxy:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError("micro server exited before it was ready")
            if line.startswith("micro server ready"):
                proxy = line.split()[-1]
        anonymous = Client(proxy=proxy)
        token = await RPCAuth(anonymous).token(id="admin", secret="bench")
        await anonymous.close()
        client = Client(proxy=proxy, metadata={"authorization": f"Bearer {token.access_token}"})
        try:
            return await _ours(RPCStream(client), n)
        finally:
            await client.close()
    finally:
        proc.terminate()
        await proc.wait()


# --------------------------------------------------------------------------- raw


async def raw_nats(n: int) -> dict[str, float]:
    import nats
    from nats.js import api

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    prefix = f"rawbench{uuid.uuid4().hex[:8]}"
    try:
        for topic in ("pub", "e2e"):
            await js.add_stream(name=f"{prefix}_{topic}", subjects=[f"{prefix}.{topic}"])
        pub = await _timed_publish(n, lambda i: js.publish(f"{prefix}.pub", PAYLOAD))

        async def consume(count: int) -> None:
            sub = await js.pull_subscribe(
                f"{prefix}.e2e",
                durable="g",
                stream=f"{prefix}_e2e",
                config=api.ConsumerConfig(ack_wait=30, max_ack_pending=-1),
            )
            got = 0
            while got < count:
                try:
                    msgs = await sub.fetch(BATCH, timeout=1.0)
                except nats.errors.TimeoutError:
                    continue
                for msg in msgs:
                    await msg.ack()
                    got += 1
            await sub.unsubscribe()

        e2e = await _timed_e2e(n, lambda i: js.publish(f"{prefix}.e2e", PAYLOAD), consume)
        return {"publish": pub, "e2e": e2e}
    finally:
        for topic in ("pub", "e2e"):
            await js.delete_stream(f"{prefix}_{topic}")
        await nc.close()


async def raw_redis(n: int) -> dict[str, float]:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"rawbench-{uuid.uuid4().hex[:8]}"
    try:
        pub = await _timed_publish(n, lambda i: r.xadd(f"{prefix}:pub", {"p": PAYLOAD}))
        key = f"{prefix}:e2e"
        await r.xgroup_create(key, "g", "$", mkstream=True)

        async def consume(count: int) -> None:
            got = 0
            while got < count:
                res: Any = await r.xreadgroup("g", "c", {key: ">"}, count=BATCH, block=1000)
                for _, entries in res or ():
                    for entry_id, _fields in entries:
                        await r.xack(key, "g", entry_id)
                        got += 1

        e2e = await _timed_e2e(n, lambda i: r.xadd(key, {"p": PAYLOAD}), consume)
        return {"publish": pub, "e2e": e2e}
    finally:
        await r.delete(f"{prefix}:pub", f"{prefix}:e2e")
        await r.aclose()


# --------------------------------------------------------------------------- main


async def _reachable(backend: str) -> str | None:
    try:
        if backend == "nats":
            import nats

            async def quiet(exc: Exception) -> None:
                pass

            nc = await nats.connect(NATS_URL, max_reconnect_attempts=1, error_cb=quiet)
            await nc.jetstream().account_info()
            await nc.close()
        else:
            import redis.asyncio as aioredis

            r = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
            await r.ping()
            await r.aclose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    runners = {"nats": (ours_nats, raw_nats), "redis": (ours_redis, raw_redis)}
    rows: list[dict[str, object]] = []
    data: dict[str, object] = {"events": args.events, "concurrency": CONCURRENCY, "runs": {}}
    for backend, (ours, raw) in runners.items():
        missing = await _reachable(backend)
        if missing:
            print(f"{backend}: skipped ({missing})")
            continue
        await ours(200)  # warm up connections and scripts
        await raw(200)

        async def one(ours: Any = ours, raw: Any = raw) -> dict[str, float]:
            mine, theirs = await ours(args.events), await raw(args.events)
            sample = {f"ours_{k}": v for k, v in mine.items()}
            sample |= {f"raw_{k}": v for k, v in theirs.items()}
            return sample

        med, samples = await median_of(args.runs, one)
        for measure in ("publish", "e2e"):
            rows.append(
                {
                    "backend": backend,
                    "measure": measure + "/s",
                    "ours": med[f"ours_{measure}"],
                    "raw": med[f"raw_{measure}"],
                    "ratio": med[f"ours_{measure}"] / med[f"raw_{measure}"],
                }
            )
        data["runs"][backend] = {"medians": med, "samples": samples}  # type: ignore[index]
    print_table(
        f"events: {args.events} events, {CONCURRENCY} publishers, median of {args.runs}", rows
    )
    # The embedded default beside our JetStream stream (target: e2e >= 0.5x of it).
    embedded, _ = await median_of(args.runs, lambda: ours_sqlite_rpc(args.events))
    nats = data["runs"].get("nats", {}).get("medians", {})  # type: ignore[attr-defined]
    side = [
        {
            "stream": "sqlite via RPC (micro server)",
            "publish/s": embedded["publish"],
            "e2e/s": embedded["e2e"],
            "e2e vs ours on nats": embedded["e2e"] / nats["ours_e2e"] if nats else "-",
        }
    ]
    print_table("embedded SQLite events, durable, service to service through RPC", side)
    data["embedded"] = side
    data["table"] = rows
    print(f"\nwrote {write_results('events', data)}")


if __name__ == "__main__":
    asyncio.run(main())
