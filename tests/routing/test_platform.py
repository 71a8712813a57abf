"""Resilience policies end to end: set with ``micro config set`` in a tenant's namespace,
followed live by the server's router, applied to calls through the proxy to a real
service (attempts counted on the service's side).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import msgspec
import pytest
from tests._support import ok

import micro
import micro.client
from micro import errors
from micro.rpc import Client
from micro.testing import MicroNamespace, serving

BOUND = 30.0
"""Seconds any wait here may take at most."""


class Req(msgspec.Struct):
    name: str = ""


class Flaky:
    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.failing = False

    async def write(self, req: Req) -> str:
        self.attempts["write"] += 1
        if self.failing:
            raise errors.ServiceUnavailable("flaky", "overloaded")
        return f"wrote {req.name}"

    @micro.idempotent
    async def read(self, req: Req) -> str:
        self.attempts["read"] += 1
        if self.failing:
            raise errors.ServiceUnavailable("flaky", "overloaded")
        return f"read {req.name}"


@pytest.fixture
async def flaky(micro_namespace_env: MicroNamespace) -> AsyncIterator[Flaky]:
    handler = Flaky()
    service = micro.Service("flaky")
    service.handle(handler)
    async with serving(service):
        yield handler


@pytest.fixture
async def proxied(micro_namespace_env: MicroNamespace) -> AsyncIterator[Client]:
    client = micro.client.new_client(via_proxy=True)
    yield client
    await client.close()


def _config(ns: MicroNamespace, path: str, value: str) -> None:
    ok(ns.micro("config", "set", f"resilience.flaky.{path}", value))


async def _failed_call(client: Client, endpoint: str) -> errors.MicroError:
    try:
        await client.call("flaky", endpoint, Req("x"))
    except errors.MicroError as exc:
        return exc
    pytest.fail(f"{endpoint} did not fail")


async def test_the_proxy_follows_a_namespaces_policies(
    micro_namespace_env: MicroNamespace, flaky: Flaky, proxied: Client
) -> None:
    ns = micro_namespace_env
    assert await proxied.call("flaky", "Flaky.Read", Req("a")) == "read a"
    # A tenant's own process routes too, on its namespace's routes, watched once.
    direct = micro.client.new_client()
    try:
        assert await direct.call("flaky", "Flaky.Read", Req("d")) == "read d"
        assert direct.router is not None
        table = direct.router.table
        for _ in range(int(BOUND / 0.05)):
            if table.watching:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the tenant's registry watch never ran")
    finally:
        await direct.close()
    for path, value in (("retries", "3"), ("backoff", "1ms"), ("breaker.failures", "1000")):
        await asyncio.to_thread(_config, ns, path, value)
    flaky.failing = True
    async with asyncio.timeout(BOUND):
        # The change reaches the server's router through its config watch: poll until the
        # idempotent endpoint is tried 1 + 3 times per call.
        for _ in range(100):
            before = flaky.attempts["read"]
            exc = await _failed_call(proxied, "Flaky.Read")
            assert exc.code == 503, exc
            assert "overloaded" in exc.detail, exc
            if flaky.attempts["read"] - before == 4:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"retries never became 3: {flaky.attempts}")
        # Not idempotent: once sent, never made twice.
        before = flaky.attempts["write"]
        await _failed_call(proxied, "Flaky.Write")
        assert flaky.attempts["write"] - before == 1

        # A breaker that opens after 3 failures: calls then fail fast, naming it.
        for path, value in (("breaker.failures", "3"), ("breaker.open_for", "300ms")):
            await asyncio.to_thread(_config, ns, path, value)
        for _ in range(100):
            exc = await _failed_call(proxied, "Flaky.Write")
            if "circuit breaker" in exc.detail:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the breaker never opened")
        assert exc.code == 503
        assert "circuit breaker of service flaky is open" in exc.detail, exc.detail
        reached = flaky.attempts["write"]
        assert "circuit breaker" in (await _failed_call(proxied, "Flaky.Write")).detail
        assert flaky.attempts["write"] == reached  # failed fast: the service never saw it

        # Back up: once the open time is over, a probe goes through and closes it.
        flaky.failing = False
        refused: list[str] = []
        for _ in range(100):
            try:
                answer = await proxied.call("flaky", "Flaky.Write", Req("b"))
            except errors.ServiceUnavailable as exc:
                refused.append(exc.detail)
            else:
                assert answer == "wrote b"
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the breaker never closed")
        assert all("circuit breaker" in detail for detail in refused), refused
        assert await proxied.call("flaky", "Flaky.Write", Req("c")) == "wrote c"
