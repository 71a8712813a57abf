"""Request and response types of the ``events`` RPC service: ``Stream.Publish``,
``Stream.Consume`` (bidi), ``Stream.Topics`` and ``Store.Read`` (Micro's names).

Times are unix seconds; ``0`` means *not given* for ``offset_sequence``, ``offset_time``,
``timestamp`` and ``ack_wait``.
"""

from __future__ import annotations

import msgspec

from micro.events.base import Event, Group

__all__ = [
    "AckRequest",
    "ConsumeMessage",
    "ConsumeRequest",
    "ConsumeResponse",
    "GroupsRequest",
    "GroupsResponse",
    "PublishRequest",
    "PublishResponse",
    "ReadRequest",
    "ReadResponse",
    "ResetRequest",
    "ResetResponse",
    "TopicsRequest",
    "TopicsResponse",
]


class PublishRequest(msgspec.Struct, omit_defaults=True):
    topic: str = ""
    payload: bytes = b""
    metadata: dict[str, str] = {}
    timestamp: float = 0.0


class PublishResponse(msgspec.Struct):
    event: Event


class ConsumeRequest(msgspec.Struct, omit_defaults=True):
    """The first message of a ``Stream.Consume`` call."""

    topic: str = ""
    group: str = ""
    offset_sequence: int = 0
    offset_time: float = 0.0
    auto_ack: bool = True
    ack_wait: float = 0.0
    retry_limit: int | None = None


class AckRequest(msgspec.Struct, omit_defaults=True):
    """Every later message of a ``Stream.Consume`` call: the event ``id`` was handled
    (``success``) or must come again."""

    id: str = ""
    success: bool = False


class ConsumeMessage(msgspec.Struct, omit_defaults=True):
    """What the server decodes each client message of ``Stream.Consume`` as: the fields of
    :class:`ConsumeRequest` and :class:`AckRequest` together (the first message is the one,
    the rest the other)."""

    topic: str = ""
    group: str = ""
    offset_sequence: int = 0
    offset_time: float = 0.0
    auto_ack: bool = True
    ack_wait: float = 0.0
    retry_limit: int | None = None
    id: str = ""
    success: bool = False


class ConsumeResponse(msgspec.Struct, omit_defaults=True):
    """One delivery: the event and its attempt (1 first, 2 the first redelivery ...)."""

    id: str
    topic: str
    sequence: int
    timestamp: float
    payload: bytes = b""
    metadata: dict[str, str] = {}
    attempt: int = 1


class TopicsRequest(msgspec.Struct, omit_defaults=True):
    pass


class TopicsResponse(msgspec.Struct):
    topics: list[str] = []


class ReadRequest(msgspec.Struct, omit_defaults=True):
    topic: str = ""
    limit: int = 250
    offset_sequence: int = 0
    offset_time: float = 0.0


class ReadResponse(msgspec.Struct):
    events: list[Event] = []


class GroupsRequest(msgspec.Struct, omit_defaults=True):
    topic: str = ""


class GroupsResponse(msgspec.Struct):
    groups: list[Group] = []


class ResetRequest(msgspec.Struct, omit_defaults=True):
    """Move ``group`` of ``topic`` to a sequence or a time; neither given: to the end."""

    topic: str = ""
    group: str = ""
    offset_sequence: int = 0
    offset_time: float = 0.0


class ResetResponse(msgspec.Struct):
    group: Group
