"""Exposes a :class:`~micro.runtime.base.Runtime` as the ``runtime`` RPC service: the
``Runtime`` handler (``Create``, ``Read``, ``Update``, ``Delete``, ``Logs``) and the
``Source`` handler (``Upload``, client streaming).

As in Micro: reading needs an account of the namespace; everything else needs an admin of
it. Environment variables are secrets: only admins (of the namespace, or of the
platform) read them back. A ``file://`` source reads the server's disk: the backend
decides who may run one (:meth:`~micro.runtime.base.Runtime.check_source`). Create
stamps ``owner`` (the caller's name), ``group`` (its namespace) and ``started``.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Final

import msgspec

from micro import errors
from micro.auth import access
from micro.auth.base import Account
from micro.rpc import context
from micro.runtime.base import LogRecord
from micro.runtime.base import Runtime as RuntimeBackend
from micro.runtime.proto import (
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    EmptyResponse,
    LogsRequest,
    ReadRequest,
    ReadResponse,
    UpdateRequest,
    UpdateResponse,
    UploadRequest,
    UploadResponse,
)

__all__ = ["Runtime", "Source"]

_MAX_UPLOAD: Final = 100 * 1024 * 1024


def _platform_admin(account: Account | None) -> bool:
    """``None`` is a call no door checked: the server's own, trusted."""
    return account is None or account.is_platform_admin


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Runtime:
    """The ``Runtime`` handler."""

    def __init__(self, backend: RuntimeBackend) -> None:
        self._backend = backend

    async def create(self, req: CreateRequest) -> CreateResponse:
        """Run a service from an uploaded folder or a git URL; its build goes on after this
        returns (read its status)."""
        namespace = context.namespace()
        account = access.authorize_admin(namespace)
        service = req.service
        self._backend.check_source(service.source, platform_admin=_platform_admin(account))
        service.metadata = {
            **service.metadata,
            "owner": (account.name or account.id) if account is not None else "micro",
            "group": account.issuer if account is not None else namespace,
            "started": _now(),
        }
        created = await self._backend.create(
            service, force=req.force, namespace=namespace, git_token=req.git_token
        )
        return CreateResponse(created)

    async def read(self, req: ReadRequest) -> ReadResponse:
        """The services of the caller's namespace with their status."""
        namespace = context.namespace()
        account = access.authorize(namespace)
        services = await self._backend.read(
            name=req.service, version=req.version, namespace=namespace
        )
        if account is not None and not access.is_admin(account, namespace):
            services = [msgspec.structs.replace(s, env={}) for s in services]
        return ReadResponse(services)

    async def update(self, req: UpdateRequest) -> UpdateResponse:
        """Rebuild and restart a running service."""
        namespace = context.namespace()
        account = access.authorize_admin(namespace)
        if req.service.source:
            admin = _platform_admin(account)
            self._backend.check_source(req.service.source, platform_admin=admin)
        req.service.metadata = {**req.service.metadata, "started": _now()}
        updated = await self._backend.update(
            req.service, namespace=namespace, git_token=req.git_token
        )
        return UpdateResponse(updated)

    async def delete(self, req: DeleteRequest) -> EmptyResponse:
        """Stop a service and forget it."""
        namespace = context.namespace()
        access.authorize_admin(namespace)
        await self._backend.delete(req.service, version=req.version, namespace=namespace)
        return EmptyResponse()

    async def logs(self, req: LogsRequest) -> AsyncIterator[LogRecord]:
        """A service's last ``count`` lines, then, with ``stream``, new ones as printed."""
        namespace = context.namespace()
        access.authorize_admin(namespace)
        if req.count < 0:
            raise errors.BadRequest("runtime.Runtime.Logs", "count must not be negative")
        stream = self._backend.logs(
            req.service,
            version=req.version,
            count=req.count,
            follow=req.stream,
            namespace=namespace,
        )
        async with stream:
            async for record in stream:
                yield record


class Source:
    """The ``Source`` handler: ``Source.Upload`` receives a folder's archive in chunks."""

    def __init__(self, backend: RuntimeBackend) -> None:
        self._backend = backend

    async def upload(self, reqs: AsyncIterator[UploadRequest]) -> UploadResponse:
        """Keep an uploaded archive; the first message names the service. Answers the
        source id to create the service with."""
        namespace = context.namespace()
        access.authorize_admin(namespace)
        where = "runtime.Source.Upload"
        service = None
        chunks: list[bytes] = []
        size = 0
        async for req in reqs:
            if service is None:
                if req.service is None:
                    raise errors.BadRequest(where, "the first message must name the service")
                service = req.service
            size += len(req.data)
            if size > _MAX_UPLOAD:
                raise errors.BadRequest(where, f"the source is larger than {_MAX_UPLOAD >> 20} MiB")
            chunks.append(req.data)
        if service is None:
            raise errors.BadRequest(where, "nothing was uploaded")
        source_id = await self._backend.upload(
            service.name, service.version, b"".join(chunks), namespace=namespace
        )
        return UploadResponse(source_id)
