"""A call through gateway -> orders -> catalog -> events -> billing is one trace, with the
right parents, kept by the real server (the session's) and read back as its admin."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import msgspec

import micro
from micro.testing import MicroNamespace, serving, wait_for_service
from micro.trace import CLIENT, CONSUMER, PRODUCER, SERVER, SpanData


class Item(msgspec.Struct):
    sku: str


class Price(msgspec.Struct):
    cents: int


class Placed(msgspec.Struct):
    sku: str
    cents: int


def _services(billed: asyncio.Event) -> list[micro.Service]:
    catalog = micro.Service("catalog")
    orders = micro.Service("orders")
    billing = micro.Service("billing")

    class Catalog:
        async def get(self, req: Item) -> Price:
            return Price(cents=250)

    class Orders:
        async def place(self, req: Item) -> Placed:
            price = await orders.client.call(
                "catalog", "Catalog.Get", Item(sku=req.sku), response_type=Price
            )
            placed = Placed(sku=req.sku, cents=price.cents)
            await micro.events.publish("orders-placed", placed)
            return placed

    @billing.consume("orders-placed", group="billing")
    async def charge(order: Placed) -> None:
        micro.log.info("charged", sku=order.sku)
        billed.set()

    catalog.handle(Catalog())
    orders.handle(Orders())
    # orders last: micro.events and micro.client act as the last service started
    return [catalog, billing, orders]


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as rsp:
        return rsp.status, dict(rsp.headers)


async def _trace(trace_id: str, wanted: set[str]) -> list[SpanData]:
    """The trace's spans once spans of every service ``wanted`` arrived (each process
    flushes about every second)."""
    spans: list[SpanData] = []
    for _ in range(100):
        try:
            rsp = await micro.client.call("trace", "Trace.Read", {"id": trace_id})
        except micro.errors.NotFound:
            rsp = {"spans": []}
        spans = [msgspec.convert(s, SpanData) for s in rsp["spans"]]
        if wanted <= {s.service for s in spans}:
            return spans
        await asyncio.sleep(0.1)
    raise AssertionError(f"only {len(spans)} spans of trace {trace_id} arrived: {spans}")


async def test_gateway_orders_catalog_events_billing_is_one_trace(
    micro_namespace_env: MicroNamespace,
) -> None:
    ns = micro_namespace_env
    billed = asyncio.Event()
    services = _services(billed)
    async with serving(services[0]), serving(services[1]), serving(services[2]):
        for name in ("catalog", "billing", "orders"):
            await wait_for_service(name, domain=ns.name)
        token = ns.micro("user", "token").stdout.strip()
        # The caller's own trace: the gateway continues it (W3C traceparent header).
        caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        status, _ = await asyncio.to_thread(
            _post,
            f"{ns.server.api}/orders/Orders/Place",
            {"sku": "tea"},
            {
                "Authorization": f"Bearer {token}",
                "Micro-Namespace": ns.name,
                "Content-Type": "application/json",
                "traceparent": f"00-{caller_trace}-{caller_span}-01",
            },
        )
        assert status == 200
        async with asyncio.timeout(10):
            await billed.wait()
        spans = await _trace(caller_trace, {"api", "orders", "catalog", "billing"})
        # A native call through the proxy (the CLI's): the proxy's forward is a span.
        called = await asyncio.to_thread(ns.micro, "call", "catalog", "Catalog.Get", '{"sku":"x"}')
        assert called.returncode == 0, called.stderr
        forwarded: list[Any] = []
        for _ in range(100):
            found = await micro.client.call("trace", "Trace.List", {"service": "proxy"})
            forwarded = [t for t in found["traces"] if t["service"] == "proxy"]
            if forwarded and "catalog" in forwarded[0]["services"]:
                break
            await asyncio.sleep(0.1)
        assert forwarded, "no trace of the proxy's forward"
        assert forwarded[0]["name"] == "catalog Catalog.Get"
        assert "catalog" in forwarded[0]["services"]

    by_id = {s.span_id: s for s in spans}
    assert all(s.trace_id == caller_trace for s in spans)
    assert all(s.namespace == ns.name for s in spans)

    def one(service: str, kind: int, name: str) -> SpanData:
        [found] = [s for s in spans if s.service == service and s.kind == kind and name in s.name]
        return found

    gateway = one("api", SERVER, "/orders/Orders/Place")
    placed = one("orders", SERVER, "Orders.Place")
    to_catalog = one("orders", CLIENT, "catalog Catalog.Get")
    priced = one("catalog", SERVER, "Catalog.Get")
    published = one("orders", PRODUCER, "publish orders-placed")
    charged = one("billing", CONSUMER, "consume orders-placed")

    assert gateway.parent_id == caller_span
    # (the gateway hands the call to the proxy in process: not a hop of its own)
    assert placed.parent_id == gateway.span_id
    assert to_catalog.parent_id == placed.span_id
    assert priced.parent_id == to_catalog.span_id
    assert published.parent_id == placed.span_id
    assert charged.parent_id == published.span_id
    assert gateway.status == 200
    assert not any(s.failed for s in spans)
    # Every parent is in the trace, but for the caller's own span.
    assert {s.parent_id for s in spans} - set(by_id) == {caller_span}

    listed = await micro.client.call("trace", "Trace.List", {"service": "billing"})
    assert caller_trace in [t["id"] for t in listed["traces"]]

    # micro trace ID: the tree, each child indented under its parent.
    shown = await asyncio.to_thread(ns.micro, "trace", caller_trace)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:2] == ["SPAN", "SERVICE"]
    indent = {line.strip().split("  ")[0]: len(line) - len(line.lstrip()) for line in lines[1:]}
    assert indent["POST /orders/Orders/Place"] == 0
    assert indent["Catalog.Get"] > indent["catalog Catalog.Get"] > indent["Orders.Place"]
    assert indent["consume orders-placed"] > indent["publish orders-placed"]


async def test_a_broker_message_carries_its_publishers_trace(
    micro_namespace_env: MicroNamespace,
) -> None:
    ns = micro_namespace_env
    got = asyncio.Event()
    listener = micro.Service("listener")

    @listener.subscribe("prices")
    async def on_price(msg: Price) -> None:
        got.set()

    async with serving(listener):
        await wait_for_service("listener", domain=ns.name)
        with micro.trace.span("reprice") as outer:
            assert outer is not None
            await micro.broker.publish("prices", Price(cents=3))
        async with asyncio.timeout(10):
            await got.wait()
        spans = await _trace(outer.trace_id, {"listener"})
    published = [s for s in spans if s.kind == PRODUCER and s.name == "publish prices"]
    consumed = [s for s in spans if s.kind == CONSUMER and s.name == "consume prices"]
    assert len(published) == 1
    assert len(consumed) == 1
    assert published[0].parent_id == outer.span_id
    assert consumed[0].parent_id == published[0].span_id
    assert consumed[0].service == "listener"
