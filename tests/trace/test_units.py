"""The pieces of tracing without a server: traceparent, the store's bounds, sampling,
the middleware's parenting and logs' trace ids."""

from __future__ import annotations

import logging
import secrets
import sys
from typing import Any

import pytest

import micro.log
from micro.rpc import context as rpc_context
from micro.rpc.context import Call
from micro.rpc.types import ClientCall, Handler
from micro.trace import SERVER, Parent, Recorder, SpanData, current_ids, parse, span
from micro.trace.context import activate, deactivate, format_parent
from micro.trace.middleware import ClientTracing, ServerTracing
from micro.trace.store import MAX_SPANS, TraceStore, batch_size, span_size
from micro.trace.view import layout

T = "4bf92f3577b34da6a3ce929d0e0e4736"
S = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"00-{T}-{S}-01", Parent(T, S, True)),
        (f"00-{T}-{S}-00", Parent(T, S, False)),
        (f"00-{T}-{S}-03", Parent(T, S, True)),
        (None, None),
        ("", None),
        (f"01-{T}-{S}-01", None),  # a version we do not speak
        (f"00-{T.upper()}-{S}-01", None),  # upper case is invalid
        (f"00-{'0' * 32}-{S}-01", None),  # all-zero ids are invalid
        (f"00-{T}-{'0' * 16}-01", None),
        (f"00-{T}-{S}-01-extra", None),
        ("x" * 55, None),
    ],
)
def test_traceparent_is_parsed_strictly(value: str | None, expected: Parent | None) -> None:
    assert parse(value) == expected


def test_format_round_trips() -> None:
    assert parse(format_parent(T, S)) == Parent(T, S, True)
    assert parse(format_parent(T, S, False)) == Parent(T, S, False)


def _span(ns: str, trace: str, name: str = "x", size: int = 0) -> SpanData:
    return SpanData(trace, secrets.token_hex(8), "", name + "y" * size, SERVER, 1, 2, "svc", ns)


def test_the_store_keeps_traces_per_namespace_within_its_bounds() -> None:
    store = TraceStore(max_traces=3, max_bytes=10**9)
    for i in range(5):
        store.add([_span("a", f"{i:032x}")])
    store.add([_span("b", f"{9:032x}")])
    # a's oldest two went; b's trace did not pay for a's
    assert [t.id for t in store.search("a")] == [f"{i:032x}" for i in (4, 3, 2)]
    assert [t.id for t in store.search("b")] == [f"{9:032x}"]
    assert store.get("b", f"{4:032x}") == []  # another namespace's id: nothing


def test_the_store_is_bounded_in_bytes_and_spans_per_trace() -> None:
    one = span_size(_span("a", T, size=1000))
    store = TraceStore(max_traces=100, max_bytes=one * 3)
    for i in range(5):
        store.add([_span("a", f"{i:032x}", size=1000)])
    assert len(store) == 3
    assert store.size <= one * 3
    roomy = TraceStore()
    roomy.add([_span("c", T) for _ in range(MAX_SPANS + 10)])
    assert len(roomy.get("c", T)) == MAX_SPANS


def test_spans_recorded_through_a_namespace_land_there_whatever_they_say() -> None:
    store = TraceStore()
    store.add([_span("victim", T)], "attacker")
    assert store.get("victim", T) == []
    [kept] = store.get("attacker", T)
    assert kept.namespace == "attacker"


def test_search_filters() -> None:
    store = TraceStore()
    ok = SpanData(T, S, "", "Orders.Place", SERVER, 0, 5_000_000, "orders", "n")
    bad = SpanData("1" * 32, S, "", "Catalog.Get", SERVER, 0, 1_000_000, "catalog", "n", 500)
    store.add([ok, bad])
    assert [t.id for t in store.search("n", service="orders")] == [T]
    assert [t.id for t in store.search("n", endpoint="catalog.get")] == ["1" * 32]
    assert [t.id for t in store.search("n", status="error")] == ["1" * 32]
    assert [t.id for t in store.search("n", status="ok")] == [T]
    assert [t.id for t in store.search("n", status="500")] == ["1" * 32]
    assert [t.id for t in store.search("n", min_duration_ms=2)] == [T]


def test_layout_puts_children_under_parents() -> None:
    root = SpanData(T, "a" * 16, "", "root", SERVER, 0, 100, "s", "n")
    child = SpanData(T, "b" * 16, "a" * 16, "child", SERVER, 10, 50, "s", "n")
    grandchild = SpanData(T, "c" * 16, "b" * 16, "grandchild", SERVER, 20, 30, "s", "n")
    orphan = SpanData(T, "d" * 16, "e" * 16, "orphan", SERVER, 5, 6, "s", "n")
    rows = layout([grandchild, orphan, child, root])
    assert [(r.span.name, r.depth) for r in rows] == [
        ("root", 0),
        ("child", 1),
        ("grandchild", 2),
        ("orphan", 0),
    ]
    assert rows[1].offset == 10.0
    assert rows[1].width == 40.0


def _recorder(sample: float = 1.0) -> Recorder:
    rec = Recorder()
    rec.configure(service="svc", sample=sample)

    async def sink(batch: list[SpanData]) -> None:
        pass

    rec.attach("test", sink, owner=rec)
    return rec


async def _serve(observer: ServerTracing, call: Call, handler: Handler) -> Any:
    """Serve ``call`` with ``handler`` as the server does with an observer."""
    begun = observer.begin(call)
    try:
        result = await handler(call)
    except BaseException as exc:
        observer.end(call, begun, exc)
        raise
    observer.end(call, begun, None)
    return result


async def test_server_and_client_tracing_parent_each_other() -> None:
    rec = _recorder()
    server = ServerTracing("orders", rec)
    client = ClientTracing("orders", rec)
    sent: list[dict[str, str]] = []

    async def send(call: ClientCall) -> Any:
        sent.append(dict(call.metadata))
        return b""

    async def handler(call: Call) -> Any:
        ids = current_ids()
        out = ClientCall("catalog", "Catalog.Get", {"micro-namespace": "n"}, "", b"", 1.0)
        await client(out, send)
        return ids

    call = Call("orders", "Orders.Place", {"traceparent": f"00-{T}-{S}-01"}, "")
    rpc_context._set(call)  # (what the server does for each call it serves)
    ids = await _serve(server, call, handler)
    served, made = rec.spans[1], rec.spans[0]
    assert ids == (T, served.span_id)
    assert served.parent_id == S
    assert made.parent_id == served.span_id
    assert sent[0]["traceparent"] == f"00-{T}-{made.span_id}-01"


async def test_an_unsampled_trace_passes_through_unrecorded() -> None:
    rec = _recorder()
    server = ServerTracing("orders", rec)
    unsampled = f"00-{T}-{S}-00"

    async def handler(call: Call) -> Any:
        return current_ids()

    call = Call("orders", "X.Y", {"traceparent": unsampled}, "")
    rpc_context._set(call)
    ids = await _serve(server, call, handler)
    assert rec.spans == []
    # Logs still carry the caller's ids; the handler's calls carry its traceparent on as is.
    assert ids == (T, S)


async def test_sample_zero_records_nothing() -> None:
    rec = _recorder(sample=0.0)
    server = ServerTracing("orders", rec)

    async def handler(call: Call) -> Any:
        return None

    await _serve(server, Call("orders", "X.Y", {}, ""), handler)
    await _serve(server, Call("orders", "X.Y", {"traceparent": f"00-{T}-{S}-01"}, ""), handler)
    assert rec.spans == []


def test_log_records_carry_the_trace_ids(caplog: pytest.LogCaptureFixture) -> None:
    token = activate(Parent(T, S, True))
    try:
        record = logging.LogRecord("micro.app", logging.INFO, __file__, 1, "hi", None, None)
        fields = micro.log.fields_of(record)
    finally:
        deactivate(token)
    assert fields["trace_id"] == T
    assert fields["span_id"] == S


def test_a_span_block_is_current_and_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _recorder()
    monkeypatch.setattr(sys.modules["micro.trace.span"], "recorder", rec)
    with span("price", basket="7") as made:
        assert made is not None
        assert current_ids() == (made.trace_id, made.span_id)
    assert current_ids() is None
    [kept] = rec.spans
    assert kept.name == "price"
    assert kept.attributes == {"basket": "7"}


def test_spans_with_malformed_ids_are_not_kept() -> None:
    # The server's middleware checks a caller's traceparent by its shape only.
    store = TraceStore()
    bad_trace = SpanData("Z" * 32, S, "", "x", SERVER, 1, 2, "s", "n")
    bad_parent = SpanData(T, S, "not-hex-at-all!!", "x", SERVER, 1, 2, "s", "n")
    zero = SpanData("0" * 32, S, "", "x", SERVER, 1, 2, "s", "n")
    store.add([bad_trace, bad_parent, zero])
    assert len(store) == 0


async def test_a_traceparent_of_the_right_shape_but_not_hex_records_nothing_kept() -> None:
    rec = _recorder()
    kept = TraceStore()

    async def sink(batch: list[SpanData]) -> None:
        kept.add(batch)

    rec.attach("store", sink, owner=kept)
    server = ServerTracing("orders", rec)

    async def handler(call: Call) -> Any:
        return None

    forged = f"00-{'g' * 32}-{S}-01"
    await _serve(
        server, Call("orders", "X.Y", {"traceparent": forged, "micro-namespace": "n"}, ""), handler
    )
    await rec.flush()
    assert kept.search("n") == []


def test_batches_let_go_leave_the_traces_read_before_them_whole() -> None:
    # Spans are indexed at the first read after they came; a batch let go afterwards
    # takes exactly its own spans out of the traces it was part of.
    store = TraceStore(max_traces=3, max_bytes=10**9)
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    first = [_span("n", a, "first"), _span("n", b, "first")]
    store.add(first)
    assert {t.id for t in store.search("n")} == {a, b}  # indexed now
    store.add([_span("n", a, "second"), _span("n", c, "second")])  # 4 > 3: first goes
    assert [s.name for s in store.get("n", a)] == ["second"]
    assert store.get("n", b) == []
    assert [t.id for t in store.search("n")] == [c, a]
    assert store.size == batch_size(store.get("n", a) + store.get("n", c))


def test_the_byte_bound_lets_the_oldest_batch_of_any_namespace_go() -> None:
    one = span_size(_span("busy", T, size=1000))
    store = TraceStore(max_bytes=one * 2)
    store.add([_span("old", T, size=1000)])
    store.add([_span("busy", f"{1:032x}", size=1000)])
    store.add([_span("busy", f"{2:032x}", size=1000)])
    assert store.search("old") == []
    assert len(store.search("busy")) == 2


def test_a_quiet_namespace_does_not_make_a_busy_ones_let_go_batches_pile_up() -> None:
    # The quiet namespace's one batch stays first in the order of all batches; the busy
    # namespace's batches go by its own trace bound behind it, and must not be kept.
    store = TraceStore(max_traces=2, max_bytes=10**9)
    store.add([_span("quiet", T)])
    for i in range(5000):
        store.add([_span("busy", f"{i + 1:032x}")])
    assert len(store._order) < 200
    assert [t.id for t in store.search("quiet")] == [T]
    assert [t.id for t in store.search("busy")] == [f"{5000:032x}", f"{4999:032x}"]
