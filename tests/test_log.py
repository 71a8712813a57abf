"""micro.log: fields after the message, the service's name, trace ids from a provider."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types
from collections.abc import Iterator, Mapping

import pytest

import micro
from micro import log


@pytest.fixture
def lines() -> Iterator[list[str]]:
    """What the text and JSON formatters make of the records logged during the test."""
    out: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            out.append(self.format(record))

    text, structured = Collect(), Collect()
    text.setFormatter(log._TextFormatter())
    structured.setFormatter(log._JSONFormatter())
    root = logging.getLogger()
    root.addHandler(text)
    root.addHandler(structured)
    log.set_service("billing")
    try:
        yield out
    finally:
        root.removeHandler(text)
        root.removeHandler(structured)
        log.set_service("")


def test_fields_follow_the_message_and_the_service_leads(lines: list[str]) -> None:
    micro.log.warning("charged order", order=7, note="two words")
    text, structured = lines
    assert text.endswith('level=warning service=billing charged order order=7 note="two words"')
    data = json.loads(structured)
    assert data["message"] == "charged order"
    assert (data["service"], data["order"], data["note"]) == ("billing", 7, "two words")


def test_trace_ids_come_from_micro_trace_once_it_is_imported(
    lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids: list[tuple[str, str] | None] = [None]
    trace = types.ModuleType("micro.trace")
    trace.current_ids = lambda: ids[0]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "micro.trace", trace)
    logging.getLogger("app").warning("outside a trace")
    ids[0] = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    logging.getLogger("app").warning("in a call")
    assert "trace_id" not in json.loads(lines[1])
    inside = json.loads(lines[3])
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert inside["span_id"] == "00f067aa0ba902b7"


def test_context_comes_from_a_provider_and_reaches_plain_logging_too(lines: list[str]) -> None:
    current: dict[str, str] = {}

    def trace() -> Mapping[str, str]:
        return current

    log.add_context(trace)
    try:
        logging.getLogger("app").warning("outside a span")
        current.update(trace_id="4bf92f3577b34da6", span_id="00f067aa0ba902b7")
        logging.getLogger("app").warning("inside")
    finally:
        log.remove_context(trace)
    assert "trace_id" not in json.loads(lines[1])
    inside = json.loads(lines[3])
    assert (inside["trace_id"], inside["span_id"]) == ("4bf92f3577b34da6", "00f067aa0ba902b7")
    assert lines[2].endswith("inside trace_id=4bf92f3577b34da6 span_id=00f067aa0ba902b7")


def test_the_ring_keeps_the_fields_for_debug_log(lines: list[str]) -> None:
    ring = log.RingHandler(capacity=2)
    logger = logging.getLogger("micro.app")
    logger.addHandler(ring)
    try:
        micro.log.get("micro.app").warning("paid", order=7)
    finally:
        logger.removeHandler(ring)
    [record] = ring.records
    assert record["message"] == "paid"
    assert record["metadata"]["order"] == "7"
    assert record["metadata"]["service"] == "billing"


def test_every_block_is_an_attribute_of_micro_before_any_service() -> None:
    code = (
        "import micro\n"
        "for name in ('store', 'config', 'events', 'broker', 'client', 'errors', 'log',"
        " 'registry', 'context'):\n"
        "    assert getattr(micro, name).__name__ == 'micro.' + name\n"
        "assert micro.Service.__name__ == 'Service'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
