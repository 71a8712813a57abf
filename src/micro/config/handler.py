"""Exposes any :class:`~micro.config.base.Config` as the ``config`` RPC service
(``config.Config``: ``Get``, ``Set``, ``Delete``, ``Watch``).

The namespace is the request's, else the caller's (``micro-namespace``); who may touch
which namespace is checked here: the caller must administer it (Micro's AuthorizeAdmin).
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
from micro.rpc import context

__all__ = ["Config"]


def _namespace(requested: str) -> str:
    """The namespace acted on; the caller must administer it (Micro's AuthorizeAdmin)."""
    namespace = requested or context.namespace()
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
            req.path, secret=req.options.secret, namespace=_namespace(req.namespace)
        )
        return GetResponse(to_message(value))

    async def set(self, req: SetRequest) -> SetResponse:
        """Store the JSON in ``value.data`` at a path: objects merge, the rest replaces;
        encrypted when ``options.secret``. A malformed value is a 400."""
        if req.value is None:
            raise errors.BadRequest("config", "invalid config value: missing")
        data = decode_data(req.value.data)
        await self._backend.set(
            req.path, data, secret=req.options.secret, namespace=_namespace(req.namespace)
        )
        return SetResponse()

    async def delete(self, req: DeleteRequest) -> DeleteResponse:
        """Remove the value at a path (missing is fine)."""
        await self._backend.delete(req.path, namespace=_namespace(req.namespace))
        return DeleteResponse()

    async def watch(self, req: WatchRequest) -> AsyncIterator[WatchResponse]:
        """The value at a path now, then after each change, until the caller cancels."""
        watcher = self._backend.watch(
            req.path, secret=req.options.secret, namespace=_namespace(req.namespace)
        )
        try:
            async for value in watcher:
                yield WatchResponse(to_message(value))
        finally:
            await watcher.stop()
