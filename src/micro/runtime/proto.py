"""The ``runtime`` service's messages (Micro's ``runtime.Runtime`` and ``runtime.Source``)."""

from __future__ import annotations

import msgspec

from micro.runtime.base import LogRecord, Service

__all__ = [
    "CreateRequest",
    "CreateResponse",
    "DeleteRequest",
    "EmptyResponse",
    "LogRecord",
    "LogsRequest",
    "ReadRequest",
    "ReadResponse",
    "UpdateRequest",
    "UpdateResponse",
    "UploadRequest",
    "UploadResponse",
]


class CreateRequest(msgspec.Struct, omit_defaults=True):
    service: Service
    force: bool = False
    git_token: str = ""
    """The token that fetches a private repository (kept sealed, never shown)."""


class CreateResponse(msgspec.Struct):
    service: Service


class ReadRequest(msgspec.Struct, omit_defaults=True):
    service: str = ""
    version: str = ""


class ReadResponse(msgspec.Struct):
    services: list[Service] = []


class UpdateRequest(msgspec.Struct, omit_defaults=True):
    service: Service
    git_token: str = ""


class UpdateResponse(msgspec.Struct):
    service: Service


class DeleteRequest(msgspec.Struct, omit_defaults=True):
    service: str
    version: str = ""


class EmptyResponse(msgspec.Struct):
    pass


class LogsRequest(msgspec.Struct, omit_defaults=True):
    service: str
    version: str = ""
    count: int = 15
    stream: bool = False


class UploadRequest(msgspec.Struct, omit_defaults=True):
    """A chunk of a service's archive; the first one names the service."""

    service: Service | None = None
    data: bytes = b""


class UploadResponse(msgspec.Struct):
    id: str
