"""What callers name never grows the gateway without bound: metrics, CORS, routes of
unknown services, cached paths."""

from __future__ import annotations

import contextlib
import secrets

from micro import errors
from micro.api import resolve as resolving
from micro.api.cors import Cors
from micro.api.metrics import OTHER, UNKNOWN, Metrics
from micro.registry.memory import MemoryRegistry
from micro.routing import RouteTable


def test_unknown_services_share_one_series_and_the_rest_is_capped() -> None:
    metrics = Metrics(max_series=3)
    for _ in range(3000):
        metrics.observe_unknown(404, 0.001)
    for n in range(10):
        metrics.observe("svc", f"H.M{n}", 200, 0.001)
    text = metrics.render().decode()
    assert f'service="{UNKNOWN[0]}",endpoint="{UNKNOWN[1]}",code="404"}} 3000' in text
    assert f'service="{OTHER[0]}",endpoint="{OTHER[1]}",code="200"}} 8' in text
    assert len(text) < 10_000


def test_cors_off_listed_or_any_and_never_with_credentials() -> None:
    assert Cors(()).headers("https://a.example") == []
    listed = Cors(("https://a.example",))
    allowed = dict(listed.headers("https://a.example"))
    assert allowed[b"access-control-allow-origin"] == b"https://a.example"
    assert allowed[b"vary"] == b"Origin"
    assert dict(listed.headers("https://evil.example")) == {b"vary": b"Origin"}
    anyone = dict(Cors(("*", "https://a.example")).headers("https://evil.example"))
    assert anyone[b"access-control-allow-origin"] == b"*"
    for headers in (allowed, anyone):
        assert b"access-control-allow-credentials" not in headers


async def test_unknown_services_are_remembered_within_a_budget() -> None:
    routes = RouteTable(MemoryRegistry())
    for _ in range(3000):
        name = secrets.token_hex(1000)  # 2,000 characters each: 6 MB of names in all
        with contextlib.suppress(errors.NotFound):
            await routes.lookup(name, "micro")
    assert routes._missing._bytes <= routes._missing.budget
    assert not routes._cache


def test_long_paths_and_hosts_are_resolved_but_not_cached() -> None:
    before = resolving._resolve_cached.cache_info().currsize
    hosts = resolving._subdomain_cached.cache_info().currsize
    long = "/" + "x" * 10_000 + "/call"
    assert resolving.resolve(long) == ("x" * 10_000, "X" + "x" * 9_999 + ".Call")
    assert resolving.subdomain_namespace("a." * 5_000 + "example.com") is not None
    assert resolving._resolve_cached.cache_info().currsize == before
    assert resolving._subdomain_cached.cache_info().currsize == hosts
