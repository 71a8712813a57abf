"""The ``trace`` service from the caller's side (the CLI, the dashboard)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from micro.trace.proto import ListRequest, ListResponse, ReadRequest, ReadResponse, Summary
from micro.trace.record import SpanData

if TYPE_CHECKING:
    from micro.rpc.client import Client

__all__ = ["RPCTraces"]


class RPCTraces:
    """Searches and reads the traces of the client's namespace."""

    def __init__(self, client: Client, *, namespace: str | None = None) -> None:
        self._client = client
        self._metadata = {"micro-namespace": namespace} if namespace else None

    async def list(
        self,
        *,
        service: str = "",
        endpoint: str = "",
        status: str = "",
        min_duration_ms: float = 0.0,
        limit: int = 50,
    ) -> list[Summary]:
        """Recent traces matching every filter given, newest first."""
        req = ListRequest(service, endpoint, status, min_duration_ms, limit)
        rsp = await self._client.call(
            "trace", "Trace.List", req, response_type=ListResponse, metadata=self._metadata
        )
        traces: list[Summary] = rsp.traces
        return traces

    async def read(self, trace_id: str) -> builtins.list[SpanData]:
        """One trace's spans, earliest first; NotFound when the namespace has none of it."""
        rsp = await self._client.call(
            "trace",
            "Trace.Read",
            ReadRequest(trace_id),
            response_type=ReadResponse,
            metadata=self._metadata,
        )
        spans: builtins.list[SpanData] = rsp.spans
        return spans
