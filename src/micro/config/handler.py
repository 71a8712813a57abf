"""Exposes any :class:`~micro.config.base.Config` as the ``config`` RPC service
(``config.Config``: ``Get``, ``Set``, ``Delete``, ``Watch``).

The namespace is the call's (``micro-namespace``; a request naming another is a 400); who
may touch which namespace is checked here: the caller must administer it (Micro's
AuthorizeAdmin), except that a service's own account may read (get and watch, secrets
included) the config of its namespace, and change none of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from micro import errors
from micro.auth import access
from micro.config.base import Config as ConfigBackend
from micro.config.proto import (
    DeleteRequest,
    DeleteResponse,
    GetRequest,
    GetResponse,
    SetRequest,
    SetResponse,
    WatchRequest,
    WatchResponse,
    decode_data,
    to_message,
)

__all__ = ["Config"]


def _namespace(requested: str, endpoint: str, *, read: bool = False) -> str:
    """The namespace acted on; the caller must administer it (Micro's AuthorizeAdmin), or,
    to ``read``, be one of its services."""
    namespace = access.namespace(requested, f"config.{endpoint}")
    if read:
        access.authorize_service(namespace)
    else:
        access.authorize_admin(namespace)
    return namespace


class Config:
    """The ``Config`` handler over a config backend (``StoreConfig`` in the server)."""

    def __init__(self, backend: ConfigBackend) -> None:
        self._backend = backend

    async def get(self, req: GetRequest) -> GetResponse:
        """The value at a path as JSON text (``null`` when missing); secrets masked
        unless ``options.secret``."""
        value = await self._backend.get(
            req.path,
            secret=req.options.secret,
            namespace=_namespace(req.namespace, "Config.Get", read=True),
        )
        return GetResponse(to_message(value))

    async def set(self, req: SetRequest) -> SetResponse:
        """Store the JSON in ``value.data`` at a path: objects merge, the rest replaces;
        encrypted when ``options.secret``. A malformed value is a 400."""
        if req.value is None:
            raise errors.BadRequest("config", "invalid config value: missing")
        data = decode_data(req.value.data)
        await self._backend.set(
            req.path,
            data,
            secret=req.options.secret,
            namespace=_namespace(req.namespace, "Config.Set"),
        )
        return SetResponse()

    async def delete(self, req: DeleteRequest) -> DeleteResponse:
        """Remove the value at a path (missing is fine)."""
        await self._backend.delete(req.path, namespace=_namespace(req.namespace, "Config.Delete"))
        return DeleteResponse()

    async def watch(self, req: WatchRequest) -> AsyncIterator[WatchResponse]:
        """The value at a path now, then after each change, until the caller cancels."""
        watcher = self._backend.watch(
            req.path,
            secret=req.options.secret,
            namespace=_namespace(req.namespace, "Config.Watch", read=True),
        )
        try:
            async for value in watcher:
                yield WatchResponse(to_message(value))
        finally:
            await watcher.stop()
