"""Fixtures for the RPC tests: a real Server on 127.0.0.1 port 0 hosting the test handler.

Every async test here runs twice, on asyncio's own loop and on uvloop (what ``micro``
runs on in production), through pytest-asyncio's loop-factory hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import uvloop
from greeter_service import SERVICE, Greeter, Probe, WatchedServer

from micro.rpc import Client, endpoints_of


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def server(probe: Probe) -> AsyncIterator[WatchedServer]:
    srv = WatchedServer()
    srv.add(SERVICE, endpoints_of(Greeter(probe)))
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def client(server: WatchedServer) -> AsyncIterator[Client]:
    cl = Client(proxy=str(server.address), timeout=10.0)
    yield cl
    await cl.close()
