"""The metrics of a process: the one server observer counts, times and tracks calls per
endpoint; labels stay bounded; quantiles follow Prometheus's estimate; consumer lag is
fresh at each scrape; ``Debug.Metrics`` answers it over a real socket."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from micro import codec, errors
from micro.debug import Debug
from micro.events.consumer import consumer, run_consumers
from micro.events.memory import MemoryStream
from micro.metrics import OTHER, ProcessMetrics, Registry
from micro.rpc import Client, Server, endpoints_of
from micro.wire import frames
from micro.wire.pool import Pool


class Shop:
    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate

    async def buy(self, req: dict[str, int]) -> dict[str, int]:
        if req.get("fail"):
            raise errors.BadRequest("shop", "no")
        return req

    async def wait(self) -> None:
        await self.gate.wait()


async def test_one_observer_counts_times_and_tracks_calls_in_flight() -> None:
    metrics = ProcessMetrics(Registry())
    gate = asyncio.Event()
    server = Server(observers=[metrics])
    server.add("shop", endpoints_of(Shop(gate)))
    server.add_internal(endpoints_of(Debug(server.stats, metrics)))
    client = Client(proxy=str(await server.start("127.0.0.1:0")))
    try:
        for fail in (0, 0, 1):
            with pytest.raises(errors.BadRequest) if fail else contextlib.nullcontext():
                await client.call("shop", "Shop.Buy", {"fail": fail})
        waiting = asyncio.create_task(client.call("shop", "Shop.Wait", {}))
        for _ in range(200):  # until the call is being served
            if metrics.in_flight.values.get(("shop",)) == 1:
                break
            await asyncio.sleep(0.01)
        answer = await client.call("shop", "Debug.Metrics", {})
        gate.set()
        await waiting
    finally:
        await client.close()
        await server.stop(grace=1)
    text = answer["text"]
    assert 'micro_requests_total{service="shop",endpoint="Shop.Buy",code="200"} 2' in text
    assert 'micro_requests_total{service="shop",endpoint="Shop.Buy",code="400"} 1' in text
    assert 'micro_requests_in_flight{service="shop"} 1' in text
    assert 'micro_request_duration_seconds_count{service="shop",endpoint="Shop.Buy"} 3' in text
    [buy] = [e for e in answer["endpoints"] if e["endpoint"] == "Shop.Buy"]
    assert (buy["requests"], buy["errors"]) == (3, 1)
    assert 0 < buy["p50"] <= buy["p99"]
    assert metrics.in_flight.values[("shop",)] == 0


async def test_a_call_past_its_deadline_counts_as_408() -> None:
    # The server's own deadline ends the call (the caller keeps no timer): the observer is
    # told of a timeout, not of a cancelled call.
    metrics = ProcessMetrics(Registry())
    server = Server(observers=[metrics])
    server.add("shop", endpoints_of(Shop(asyncio.Event())))
    pool = Pool()
    try:
        conn = await pool.get(str(await server.start("127.0.0.1:0")))
        header = frames.RequestHeader("shop", "Shop.Wait", codec.MSGPACK, 50.0, {})
        with pytest.raises(errors.Timeout):
            await asyncio.wait_for(
                conn.unary(header, codec.codec_for(codec.MSGPACK).encode({}), None), 10
            )
    finally:
        await pool.close()
        await server.stop(grace=1)
    assert metrics.requests.values[("shop", "Shop.Wait", "408")] == 1
    assert metrics.in_flight.values[("shop",)] == 0


def test_labels_are_bounded_and_quantiles_interpolate() -> None:
    registry = Registry(max_series=3)
    calls = registry.counter("c_total", "help", ("endpoint",))
    for i in range(1000):
        calls.inc(f"E{i}")
    assert len(calls.values) == 4
    assert calls.values[(OTHER,)] == 997
    latency = registry.histogram("h_seconds", "help", ("endpoint",))
    for _ in range(50):
        latency.observe("E", seconds=0.003)  # bucket (0.0025, 0.005]
    for _ in range(50):
        latency.observe("E", seconds=0.2)  # bucket (0.1, 0.25]
    assert latency.quantile(0.5, "E") == pytest.approx(0.005)
    assert latency.quantile(0.99, "E") == pytest.approx(0.1 + 0.15 * 49 / 50)
    assert latency.quantile(0.5, "missing") is None
    text = registry.render(lambda name, labels: labels != (OTHER,)).decode()
    assert "(other)" not in text
    assert 'h_seconds_bucket{endpoint="E",le="+Inf"} 100' in text


async def test_consumer_lag_and_event_counts_are_fresh_at_each_scrape() -> None:
    from micro.metrics.process import default

    stream = MemoryStream()
    seen = asyncio.Event()

    async def handle(evt: bytes) -> None:
        seen.set()

    spec = consumer("orders", group="billing", offset=1)(handle)
    for i in range(3):
        await stream.publish("orders", str(i).encode(), namespace="shop")
    tasks = await run_consumers(stream, [spec], "shop")
    try:
        async with asyncio.timeout(10):
            await seen.wait()
        metrics = default()
        for _ in range(200):  # until all three are handled
            await metrics.registry.collect()
            if metrics.lag.values.get(("orders", "billing")) == 0:
                break
            await asyncio.sleep(0.01)
        assert metrics.lag.values[("orders", "billing")] == 0
        await stream.reset("orders", "billing", offset=None, namespace="shop")
        await stream.publish("orders", b"late", namespace="shop")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stream.publish("orders", b"later", namespace="shop")
        await metrics.registry.collect()
        assert metrics.lag.values[("orders", "billing")] >= 1
        assert metrics.consumed.values[("orders", "billing")] >= 3
    finally:
        await stream.close()
