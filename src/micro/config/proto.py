"""Request and response types of the ``config.Config`` RPC service (Micro's names).

Values travel as JSON text, as in Micro: ``{"value": {"data": "<json>", "format": "json"}}``.
Two fields are this project's: ``secrets`` (the relative paths of the secret leaves in
the value) and ``revision`` (the namespace's revision it was read at).
"""

from __future__ import annotations

from typing import Any

import msgspec

from micro import errors
from micro.config.base import Value

__all__ = [
    "DeleteRequest",
    "DeleteResponse",
    "GetRequest",
    "GetResponse",
    "Options",
    "SetRequest",
    "SetResponse",
    "ValueMessage",
    "WatchRequest",
    "WatchResponse",
    "decode_data",
    "from_message",
    "to_message",
]


class Options(msgspec.Struct, omit_defaults=True, frozen=True):
    """``secret``: reveal secrets on reads; encrypt the value on writes."""

    secret: bool = False


class ValueMessage(msgspec.Struct, frozen=True):
    """A value as JSON text (``null`` when nothing is there)."""

    data: str = "null"
    format: str = "json"
    secrets: list[str] = []
    revision: int = 0


class GetRequest(msgspec.Struct, omit_defaults=True):
    """``namespace`` defaults to the caller's; ``path`` ``""`` is the whole tree."""

    namespace: str = ""
    path: str = ""
    options: Options = Options()


class GetResponse(msgspec.Struct):
    value: ValueMessage = ValueMessage()


class SetRequest(msgspec.Struct, omit_defaults=True):
    namespace: str = ""
    path: str = ""
    value: ValueMessage | None = None
    options: Options = Options()


class SetResponse(msgspec.Struct):
    pass


class DeleteRequest(msgspec.Struct, omit_defaults=True):
    namespace: str = ""
    path: str = ""


class DeleteResponse(msgspec.Struct):
    pass


class WatchRequest(msgspec.Struct, omit_defaults=True):
    namespace: str = ""
    path: str = ""
    options: Options = Options()


class WatchResponse(msgspec.Struct):
    value: ValueMessage = ValueMessage()


def to_message(value: Value) -> ValueMessage:
    """A value as it travels."""
    return ValueMessage(
        data=msgspec.json.encode(value.data).decode(),
        secrets=sorted(value.secrets),
        revision=value.revision,
    )


def decode_data(data: str, what: str = "config value") -> Any:
    """The JSON in a message's ``data``; BadRequest naming the problem if it is not JSON."""
    if not data.strip():
        raise errors.BadRequest("config", f"invalid {what}: empty")
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise errors.BadRequest("config", f"invalid {what}: {exc}") from None


def from_message(path: str, message: ValueMessage) -> Value:
    """A value as received; a malformed one is a 502 (the service answered nonsense)."""
    try:
        data = msgspec.json.decode(message.data) if message.data else None
    except msgspec.DecodeError as exc:
        raise errors.BadGateway("config", f"unexpected config value: {exc}") from None
    return Value(
        path=path, data=data, secrets=frozenset(message.secrets), revision=message.revision
    )
