"""The runtime as the CLI sees it: the ``runtime`` RPC service behind the proxy.

A ``namespace`` other than ``"micro"`` is sent as the call's ``micro-namespace``; the
default leaves the caller's own namespace in force.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from typing import Final

from micro.rpc.client import Client, ClientStream
from micro.runtime.base import LogRecord, LogStream, Runtime, Service
from micro.runtime.proto import (
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    LogsRequest,
    ReadRequest,
    ReadResponse,
    UpdateRequest,
    UpdateResponse,
    UploadRequest,
    UploadResponse,
)

__all__ = ["CHUNK", "RPCRuntime"]

_SERVICE: Final = "runtime"
CHUNK: Final = 256 * 1024
"""Upload chunk size: large enough to cost few messages, small enough for flow control."""

_SLOW: Final = 120.0
"""Create and update may wait for the server to stop the old processes (grace periods)."""


def _metadata(namespace: str) -> dict[str, str] | None:
    return None if namespace == "micro" else {"micro-namespace": namespace}


class _RemoteLogs(LogStream):
    """Opens the ``Runtime.Logs`` stream on the first read (``logs`` is not async)."""

    def __init__(self, open_: Callable[[], Awaitable[ClientStream[LogRecord]]]) -> None:
        self._stream: ClientStream[LogRecord] | None = None
        self._open = open_

    async def next(self) -> LogRecord:
        if self._stream is None:
            self._stream = await self._open()
        record: LogRecord = await self._stream.recv()
        return record

    async def stop(self) -> None:
        if self._stream is not None:
            await self._stream.close()


class RPCRuntime(Runtime):
    """Calls the ``runtime`` service."""

    name = "rpc"

    def __init__(self, client: Client) -> None:
        self._client = client

    async def create(
        self,
        service: Service,
        *,
        force: bool = False,
        namespace: str = "micro",
        git_token: str = "",
    ) -> Service:
        rsp = await self._client.call(
            _SERVICE,
            "Runtime.Create",
            CreateRequest(service, force, git_token),
            response_type=CreateResponse,
            metadata=_metadata(namespace),
            timeout=_SLOW,
        )
        created: Service = rsp.service
        return created

    async def read(
        self, *, name: str = "", version: str = "", namespace: str = "micro"
    ) -> builtins.list[Service]:
        rsp = await self._client.call(
            _SERVICE,
            "Runtime.Read",
            ReadRequest(name, version),
            response_type=ReadResponse,
            metadata=_metadata(namespace),
        )
        services: list[Service] = rsp.services
        return services

    async def update(
        self, service: Service, *, namespace: str = "micro", git_token: str = ""
    ) -> Service:
        rsp = await self._client.call(
            _SERVICE,
            "Runtime.Update",
            UpdateRequest(service, git_token),
            response_type=UpdateResponse,
            metadata=_metadata(namespace),
            timeout=_SLOW,
        )
        updated: Service = rsp.service
        return updated

    async def delete(self, name: str, *, version: str = "", namespace: str = "micro") -> None:
        await self._client.call(
            _SERVICE,
            "Runtime.Delete",
            DeleteRequest(name, version),
            metadata=_metadata(namespace),
            timeout=_SLOW,
        )

    def logs(
        self,
        name: str,
        *,
        version: str = "",
        count: int = 15,
        follow: bool = False,
        namespace: str = "micro",
    ) -> LogStream:
        async def open_() -> ClientStream[LogRecord]:
            return await self._client.stream(
                _SERVICE,
                "Runtime.Logs",
                LogsRequest(name, version, count, follow),
                response_type=LogRecord,
                metadata=_metadata(namespace),
            )

        return _RemoteLogs(open_)

    async def upload(self, name: str, version: str, data: bytes, *, namespace: str) -> str:
        stream = await self._client.stream(
            _SERVICE,
            "Source.Upload",
            response_type=UploadResponse,
            metadata=_metadata(namespace),
            timeout=_SLOW,
        )
        async with stream:
            first: Service | None = Service(name=name, version=version)
            for start in range(0, max(len(data), 1), CHUNK):
                await stream.send(UploadRequest(first, data[start : start + CHUNK]))
                first = None
            rsp = await stream.response()
        source_id: str = rsp.id
        return source_id
