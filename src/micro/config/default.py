"""The config a service uses with no set-up: a local copy of its namespace's tree.

Design: reads are the hot path and must cost no round trip, so :func:`get` is a plain
(sync) function answering from a :class:`~micro.config.local.ConfigCopy` that a watch
keeps fresh; writes and watches are async. The copy is loaded once per event loop:

* a :class:`micro.Service` attaches one on start (:func:`attach`), in the service's
  namespace, through the service's client;
* anywhere else, ``await micro.config.load()`` loads one through the environment's
  client (``MICRO_PROXY``), in its namespace (``MICRO_NAMESPACE`` or ``micro``).

Until it is loaded, :func:`get` raises ServiceUnavailable, which a handler turns into a
503 for its caller rather than answering with a default it never checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from micro import errors
from micro.config.base import Config, Value, Watcher
from micro.config.local import ConfigCopy

if TYPE_CHECKING:
    from micro.rpc.client import Client

__all__ = [
    "attach",
    "default",
    "delete",
    "detach",
    "get",
    "load",
    "set",
    "set_default",
    "watch",
]

log = logging.getLogger("micro.config")

_copies: dict[asyncio.AbstractEventLoop, ConfigCopy] = {}


def set_default(config: Config, *, namespace: str) -> ConfigCopy:
    """Make a copy of ``namespace`` over ``config`` what this module uses on this loop
    (not loaded yet); a copy it replaces stops following."""
    loop = asyncio.get_running_loop()
    old = _copies.get(loop)
    if old is not None:
        old.shutdown()
    copy = _copies[loop] = ConfigCopy(config, namespace=namespace)
    return copy


def default() -> ConfigCopy:
    """This loop's copy: the running service's, or one over the environment's client."""
    loop = asyncio.get_running_loop()
    copy = _copies.get(loop)
    if copy is None:
        import micro.client
        from micro.config.client import RPCConfig

        for stale in [lp for lp in _copies if lp.is_closed()]:
            del _copies[stale]
        client = micro.client.default()
        namespace = client.metadata.get("micro-namespace") or "micro"
        copy = _copies[loop] = ConfigCopy(RPCConfig(client), namespace=namespace)
    return copy


async def attach(client: Client, *, namespace: str, timeout: float | None = None) -> ConfigCopy:
    """Give this loop a copy of ``namespace`` through ``client`` and load it (what
    :class:`micro.Service` does on start). If the config service does not answer within
    ``timeout`` (default: the client's), log it and go on: the copy keeps trying."""
    from micro.config.client import RPCConfig

    copy = set_default(RPCConfig(client), namespace=namespace)
    try:
        async with asyncio.timeout(client.timeout if timeout is None else timeout):
            await copy.load()
    except (errors.MicroError, TimeoutError) as exc:
        log.warning("config of namespace %s not loaded yet (%s); still trying", namespace, exc)
    return copy


async def detach() -> None:
    """Close this loop's copy (what :class:`micro.Service` does on stop)."""
    copy = _copies.pop(asyncio.get_running_loop(), None)
    if copy is not None:
        with contextlib.suppress(Exception):
            await copy.close()


async def load() -> None:
    """Load this loop's copy (no-op when loaded); raises if the config service cannot be
    reached, and keeps trying in the background."""
    await default().load()


def get(path: str = "", *, secret: bool = False) -> Value:
    """The value at ``path`` from the local copy: no I/O. ``micro.config.get("db.port")
    .int(5432)``. Secrets read as ``"[secret]"`` unless ``secret``."""
    copy = _copies.get(asyncio.get_running_loop()) or default()  # the hot path: one lookup
    return copy.get(path, secret=secret)


async def set(path: str, value: Any, *, secret: bool = False) -> None:
    """Write ``value`` at ``path`` (objects merge); :func:`get` shows it once this returns."""
    await default().set(path, value, secret=secret)


async def delete(path: str) -> None:
    """Delete the value at ``path``; :func:`get` shows it once this returns."""
    await default().delete(path)


def watch(path: str = "", *, secret: bool = False) -> Watcher:
    """The value at ``path`` now, then each time it changes (from the local copy)."""
    return default().watch(path, secret=secret)
