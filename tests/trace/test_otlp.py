"""MICRO_OTLP_ENDPOINT: a service's spans reach a real OTLP/HTTP receiver (started here,
on 127.0.0.1) as OTLP protobuf, decoded with opentelemetry-proto."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator

import msgspec
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

import micro
from micro.testing import MicroNamespace, serving, wait_for_service


class Receiver:
    """An OTLP/HTTP trace receiver: what it was sent, decoded."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.got = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.paths.append(self.path)
                receiver.requests.append(request)
                receiver.got.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[tuple[dict[str, str], ProtoSpan]]:
        """(resource attributes, span) of every span received."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found.extend((attrs, span) for span in scope_spans.spans)
        return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    thread = threading.Thread(target=made.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        made.server.shutdown()
        made.server.server_close()


class Ping(msgspec.Struct):
    text: str = ""


async def test_a_services_spans_are_exported_over_otlp_http(
    micro_namespace_env: MicroNamespace,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MICRO_OTLP_ENDPOINT", receiver.address)
    service = micro.Service("pinger")

    class Pinger:
        async def ping(self, req: Ping) -> Ping:
            return req

    service.handle(Pinger())
    async with serving(service):
        await wait_for_service("pinger", domain=micro_namespace_env.name)
        await service.client.call("pinger", "Pinger.Ping", Ping("hi"))
        for _ in range(100):  # the recorder flushes about every second
            names = {span.name for _, span in receiver.spans()}
            if {"Pinger.Ping", "pinger Pinger.Ping"} <= names:
                break
            await asyncio.sleep(0.1)
    assert receiver.paths[0] == "/v1/traces"
    spans = {span.name: (attrs, span) for attrs, span in receiver.spans()}
    attrs, server = spans["Pinger.Ping"]
    _, client = spans["pinger Pinger.Ping"]
    assert attrs["service.name"] == "pinger"
    assert attrs["micro.namespace"] == micro_namespace_env.name
    assert server.kind == ProtoSpan.SPAN_KIND_SERVER
    assert client.kind == ProtoSpan.SPAN_KIND_CLIENT
    assert server.trace_id == client.trace_id
    assert len(server.trace_id) == 16
    assert server.parent_span_id == client.span_id
    assert server.end_time_unix_nano >= server.start_time_unix_nano > 0
