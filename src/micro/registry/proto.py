"""Request and response types of the ``registry.Registry`` RPC service (Micro's names)."""

from __future__ import annotations

import msgspec

from micro.registry.base import Service

__all__ = [
    "EmptyResponse",
    "GetRequest",
    "GetResponse",
    "ListRequest",
    "ListResponse",
    "Options",
    "RegisterRequest",
    "WatchRequest",
]


class Options(msgspec.Struct, omit_defaults=True, frozen=True):
    """Where and how long: ``domain`` defaults to the caller's namespace; ``ttl`` in seconds."""

    ttl: float = 0
    domain: str = ""


class GetRequest(msgspec.Struct, omit_defaults=True):
    service: str
    options: Options = Options()


class GetResponse(msgspec.Struct):
    services: list[Service] = []


class RegisterRequest(Service, omit_defaults=True):
    """A service record plus the options of its registration, as Micro's ``Service`` message."""

    options: Options = Options()


class ListRequest(msgspec.Struct, omit_defaults=True):
    options: Options = Options()


class ListResponse(msgspec.Struct):
    services: list[Service] = []


class WatchRequest(msgspec.Struct, omit_defaults=True):
    service: str = ""
    options: Options = Options()


class EmptyResponse(msgspec.Struct):
    pass
