"""Exposes the server's :class:`~micro.trace.store.TraceStore` as the ``trace`` service.

- ``Trace.Record``: services export their finished spans here (their recorder's sink). The
  spans are kept in the call's namespace, which the door checked and the caller must
  belong to, whatever namespace the spans say: no one records into another tenant's view.
- ``Trace.List`` and ``Trace.Read``: a user account of the namespace (or a platform admin)
  searches and reads its traces; anonymous callers and service accounts may not.
"""

from __future__ import annotations

from typing import Final

from micro import errors
from micro.auth import access
from micro.trace.proto import (
    EmptyResponse,
    ListRequest,
    ListResponse,
    ReadRequest,
    ReadResponse,
    RecordRequest,
)
from micro.trace.store import TraceStore

__all__ = ["MAX_LIST", "Trace"]

MAX_LIST: Final = 500
"""The most traces one ``Trace.List`` returns."""


def _reader(where: str) -> str:
    namespace = access.namespace("", where)
    account = access.authorize(namespace)
    if account is not None and account.is_service and not account.is_platform_admin:
        raise errors.Forbidden(where, "a service account may not read traces")
    return namespace


class Trace:
    """The ``Trace`` handler: ``Trace.Record``, ``Trace.List``, ``Trace.Read``."""

    def __init__(self, store: TraceStore) -> None:
        self._store = store

    async def record(self, req: RecordRequest) -> EmptyResponse:
        """Keep spans in the caller's namespace."""
        namespace = access.namespace("", "trace.Trace.Record")
        access.authorize(namespace)
        self._store.add(req.spans, namespace)
        return EmptyResponse()

    async def list(self, req: ListRequest) -> ListResponse:
        """Recent traces of the namespace matching the filters, newest first."""
        namespace = _reader("trace.Trace.List")
        limit = min(max(req.limit, 1), MAX_LIST)
        traces = self._store.search(
            namespace,
            service=req.service,
            endpoint=req.endpoint,
            status=req.status,
            min_duration_ms=req.min_duration_ms,
            limit=limit,
        )
        return ListResponse(traces)

    async def read(self, req: ReadRequest) -> ReadResponse:
        """One trace's spans; 404 when the namespace has no trace of that id."""
        namespace = _reader("trace.Trace.Read")
        spans = self._store.get(namespace, req.id.strip().lower())
        if not spans:
            raise errors.NotFound("trace", f"trace {req.id} not found")
        return ReadResponse(spans)
