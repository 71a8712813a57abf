"""Fixtures for the RPC tests: a real Server on 127.0.0.1 port 0 hosting the test handler.

Every async test here runs twice, on asyncio's own loop and on uvloop (what ``micro``
runs on in production), through pytest-asyncio's loop-factory hook.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import uvloop
from tests.rpc.greeter_service import SERVICE, Greeter, Probe, WatchedServer

from micro.rpc import Client, endpoints_of


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    # CPython 3.11.7 shares one AST recursion counter between nested ast.parse calls. When a
    # test fails, pytest parses source to show it; if a garbage collection runs meanwhile and
    # a finalizer logs a traceback (asyncio's "Task was destroyed but it is pending!"), that
    # nested parse breaks the outer one and pytest stops with an INTERNALERROR instead of
    # reporting the failure. Collecting first runs those finalizers outside any parse.
    if call.excinfo is not None:
        gc.collect()
    return (yield)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def greeter(probe: Probe) -> Greeter:
    return Greeter(probe)


@pytest.fixture
async def server(greeter: Greeter) -> AsyncIterator[WatchedServer]:
    srv = WatchedServer()
    srv.add(SERVICE, endpoints_of(greeter))
    await srv.start("127.0.0.1:0")
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def client(server: WatchedServer) -> AsyncIterator[Client]:
    cl = Client(proxy=str(server.address), timeout=10.0)
    yield cl
    await cl.close()
