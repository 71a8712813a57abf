"""Config as services and the CLI see it: the ``config`` RPC service behind the proxy.

Services normally read through :mod:`micro.config.default`'s local copy, which uses this
client only to load, follow (``Watch``) and write.
"""

from __future__ import annotations

from typing import Any, Self

import msgspec

from micro.config.base import DEFAULT_NAMESPACE, Config, Value, Watcher, normalize, split_path
from micro.config.proto import (
    DeleteRequest,
    GetRequest,
    GetResponse,
    Options,
    SetRequest,
    ValueMessage,
    WatchRequest,
    WatchResponse,
    from_message,
)
from micro.rpc.client import Client, ClientStream

__all__ = ["RPCConfig"]

_SERVICE = "config"


def _in(namespace: str) -> dict[str, str]:
    """A call acts in one namespace (the one the server's door checks)."""
    return {"micro-namespace": namespace}


class _RPCWatcher(Watcher):
    def __init__(self, client: Client, path: str, request: WatchRequest) -> None:
        self._client = client
        self._path = path
        self._request = request
        self._stream: ClientStream[WatchResponse] | None = None
        self._stopped = False

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def _open(self) -> ClientStream[WatchResponse]:
        if self._stream is None:
            self._stream = await self._client.stream(
                _SERVICE,
                "Config.Watch",
                self._request,
                response_type=WatchResponse,
                metadata=_in(self._request.namespace),
            )
        return self._stream

    async def next(self) -> Value:
        if self._stopped:
            raise StopAsyncIteration
        stream = await self._open()
        try:
            rsp: WatchResponse = await stream.recv()
        except BaseException:
            await self.stop()
            raise
        return from_message(self._path, rsp.value)

    async def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            await self._stream.close()


class RPCConfig(Config):
    """Calls the ``config`` service."""

    name = "rpc"

    def __init__(self, client: Client) -> None:
        self._client = client

    async def get(
        self, path: str = "", *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> Value:
        split_path(path)
        req = GetRequest(namespace, path, Options(secret))
        rsp = await self._client.call(
            _SERVICE, "Config.Get", req, response_type=GetResponse, metadata=_in(namespace)
        )
        return from_message(path, rsp.value)

    async def set(
        self, path: str, value: Any, *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        split_path(path)
        data = msgspec.json.encode(normalize(value)).decode()
        req = SetRequest(namespace, path, ValueMessage(data=data), Options(secret))
        await self._client.call(_SERVICE, "Config.Set", req, metadata=_in(namespace))

    async def delete(self, path: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        split_path(path)
        await self._client.call(
            _SERVICE, "Config.Delete", DeleteRequest(namespace, path), metadata=_in(namespace)
        )

    def watch(
        self, path: str = "", *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> Watcher:
        split_path(path)
        return _RPCWatcher(self._client, path, WatchRequest(namespace, path, Options(secret)))
