"""Running a command's async body: one event loop, errors rendered, never a traceback."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from micro.cli.errors import CliError, render

__all__ = ["run"]

T = TypeVar("T")


def run(body: Callable[[], Coroutine[Any, Any, T]], *, proxy: str = "") -> T:
    """Run ``body()`` to completion; any failure becomes a :class:`CliError`."""
    from micro.wire.transport import run as run_loop

    try:
        return run_loop(body())
    except CliError:
        raise
    except Exception as exc:
        raise render(exc, proxy=proxy) from None
