"""Every async wire test runs on asyncio's own loop and on uvloop (what ``micro`` runs on)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Mapping

import pytest
import uvloop


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
