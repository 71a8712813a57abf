"""Issue 16: traces are a namespace's own. Tenant B cannot list or read tenant A's traces
through the CLI, the gateway or the dashboard, nor add to them by sending A's trace id;
anonymous callers read nothing.

Both tenants are namespaces of the session's server, each with its own admin.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.security._http import Client
from tests.web.conftest import launch, log_in, new_page

from micro.client import new_client
from micro.settings import load
from micro.testing import MicroNamespace, MicroServerProcess, create_namespace
from micro.trace import SERVER, SpanData

TRACE = secrets.token_hex(16)


def _span(namespace: str, name: str) -> SpanData:
    now = time.time_ns()
    return SpanData(
        TRACE, secrets.token_hex(8), "", name, SERVER, now, now + 1000, "secretsvc", namespace
    )


def _record(ns: MicroNamespace, spans: list[SpanData]) -> None:
    """Record ``spans`` as the admin of ``ns`` (what a service's exporter does)."""

    async def send() -> None:
        client = new_client(load(ns.env()), namespace=ns.name)
        try:
            await client.call("trace", "Trace.Record", {"spans": spans})
        finally:
            await client.close()

    asyncio.run(send())


@pytest.fixture(scope="module")
def tenants(
    micro_session_server: MicroServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> tuple[MicroNamespace, MicroNamespace]:
    """Tenant A, with a trace, and tenant B."""
    a = create_namespace(micro_session_server, tmp_path_factory.mktemp("tenant-a"))
    b = create_namespace(micro_session_server, tmp_path_factory.mktemp("tenant-b"))
    _record(a, [_span(a.name, "Secret.Plan")])
    return a, b


def _token(ns: MicroNamespace) -> str:
    done = ns.micro("user", "token")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_cli_shows_a_tenant_its_traces_only(
    tenants: tuple[MicroNamespace, MicroNamespace],
) -> None:
    a, b = tenants
    mine = a.micro("trace", "-o", "json")
    assert mine.returncode == 0, mine.stderr
    assert TRACE in [json.loads(line)["id"] for line in mine.stdout.splitlines()]
    shown = a.micro("trace", TRACE)
    assert shown.returncode == 0, shown.stderr
    assert "Secret.Plan" in shown.stdout

    theirs = b.micro("trace", "-o", "json")
    assert theirs.returncode == 0, theirs.stderr
    assert TRACE not in theirs.stdout
    assert "Secret.Plan" not in theirs.stdout
    read = b.micro("trace", TRACE)
    assert read.returncode != 0
    assert "not found" in read.stderr
    assert "Secret" not in read.stdout + read.stderr
    # B's login acting in A's namespace: refused, not shown.
    env = {**b.env(), "MICRO_NAMESPACE": a.name}
    done = b.server.micro("trace", TRACE, env=env)
    assert done.returncode != 0
    assert "Secret" not in done.stdout + done.stderr


def test_the_gateway_refuses_other_tenants_and_anonymous_callers(
    tenants: tuple[MicroNamespace, MicroNamespace],
) -> None:
    a, b = tenants
    http = Client(a.server.api)
    body = json.dumps({"id": TRACE}).encode()
    json_type = {"Content-Type": "application/json"}
    try:
        status, data = http.request(
            "POST",
            "/trace/Trace/Read",
            body,
            {**json_type, "Authorization": f"Bearer {_token(a)}", "Micro-Namespace": a.name},
        )
        assert status == 200, data
        assert b"Secret.Plan" in data
        refused = [
            {"Authorization": f"Bearer {_token(b)}", "Micro-Namespace": a.name},  # B in A
            {"Micro-Namespace": a.name},  # anonymous in A
            {},  # anonymous
        ]
        for headers in refused:
            for path in ("/trace/Trace/Read", "/trace/Trace/List"):
                status, data = http.request("POST", path, body, {**json_type, **headers})
                assert status in (401, 403), (path, headers, status, data)
                assert b"Secret" not in data
        # B in its own namespace: its own traces (none of A's).
        own = {"Authorization": f"Bearer {_token(b)}"}
        status, data = http.request("POST", "/trace/Trace/List", body, {**json_type, **own})
        assert status == 200
        assert TRACE.encode() not in data
        status, data = http.request("POST", "/trace/Trace/Read", body, {**json_type, **own})
        assert status == 404  # (its detail names the id asked for, in B's namespace)
        assert b"Secret" not in data
    finally:
        http.close()


def test_a_trace_id_sent_by_another_tenant_stays_in_its_namespace(
    tenants: tuple[MicroNamespace, MicroNamespace],
) -> None:
    a, b = tenants
    # B records spans claiming A's namespace and A's trace id.
    _record(b, [_span(a.name, "Forged.Step")])
    # ... and calls through the gateway with A's trace id as its traceparent.
    http = Client(a.server.api)
    try:
        http.request(
            "POST",
            "/nothing/Here/Now",
            b"{}",
            {
                "Authorization": f"Bearer {_token(b)}",
                "Content-Type": "application/json",
                "traceparent": f"00-{TRACE}-{secrets.token_hex(8)}-01",
            },
        )
    finally:
        http.close()
    shown = a.micro("trace", TRACE, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    names = [json.loads(line)["name"] for line in shown.stdout.splitlines()]
    assert names == ["Secret.Plan"]
    theirs = b.micro("trace", TRACE, "-o", "json")
    assert theirs.returncode == 0, theirs.stderr
    assert [json.loads(line)["name"] for line in theirs.stdout.splitlines()] == ["Forged.Step"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as browser:
        yield browser


def test_the_dashboard_shows_a_tenant_its_traces_only(
    tenants: tuple[MicroNamespace, MicroNamespace], browser: Any, tmp_path: Path
) -> None:
    a, b = tenants
    server = a.server
    with new_page(browser) as anonymous:
        anonymous.goto(f"{server.web}/traces/{TRACE}")
        assert "/login" in anonymous.url
        assert "Secret" not in anonymous.content()
    with new_page(browser) as page:
        log_in(page, server, username=a.account, password=a.secret, namespace=a.name)
        response = page.goto(f"{server.web}/traces?service=secretsvc")
        assert response is not None
        assert response.status == 200
        assert "Secret.Plan" in page.content()
        response = page.goto(f"{server.web}/traces/{TRACE}")
        assert response is not None
        assert response.status == 200
        assert "Secret.Plan" in page.locator("table.waterfall").inner_text()
    with new_page(browser) as page:
        log_in(page, server, username=b.account, password=b.secret, namespace=b.name)
        response = page.goto(f"{server.web}/traces")
        assert response is not None
        assert response.status == 200
        assert "Secret.Plan" not in page.content()
        response = page.goto(f"{server.web}/traces/{TRACE}")
        assert response is not None
        assert "Secret.Plan" not in page.content()
