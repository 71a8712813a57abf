"""Endpoints from handler objects: every public async method of a handler is one.

``service.handle(Helloworld())`` publishes ``Helloworld.Call`` for ``async def call``.
The shape of the method says how it is called:

=====================================================  ===============
``async def m(self, req: T) -> R``                      unary
``async def m(self, req: T) -> AsyncIterator[R]`` (gen) server streaming
``async def m(self, reqs: AsyncIterator[T]) -> R``      client streaming
``async def m(self, reqs: AsyncIterator[T])`` (gen)     bidi streaming
=====================================================  ===============
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from micro.rpc.schema import schema_for

__all__ = ["Endpoint", "Kind", "endpoint_name", "endpoints_of", "idempotent"]

F = typing.TypeVar("F", bound=Callable[..., Any])

_IDEMPOTENT = "__micro_idempotent__"


def idempotent(func: F) -> F:
    """Mark a handler method as safe to call twice with the same request::

        @micro.idempotent
        async def get(self, req: GetRequest) -> GetResponse: ...

    Published in the registry (endpoint metadata ``idempotent: "true"``), it lets callers
    retry a call already sent (after a lost connection or a 502/503/504), within their
    resilience policy and retry budget. Unmarked endpoints are only retried when the
    connection was refused, before anything was sent: they may have run once already.
    """
    setattr(func, _IDEMPOTENT, True)
    return func


Kind = Literal["unary", "server", "client", "bidi"]

_ASYNC_ITERATORS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One callable endpoint of a service."""

    name: str
    kind: Kind
    func: Callable[..., Any]
    request_type: Any
    response_type: Any
    takes_request: bool = True
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def streams(self) -> bool:
        """True unless the endpoint is unary."""
        return self.kind != "unary"

    def request_schema(self) -> dict[str, Any]:
        """The JSON Schema of one request message."""
        return schema_for(self.request_type)

    def response_schema(self) -> dict[str, Any]:
        """The JSON Schema of one response message."""
        return schema_for(self.response_type)


def endpoint_name(handler: str, method: str) -> str:
    """``("Helloworld", "ping_pong")`` -> ``"Helloworld.PingPong"``."""
    parts = [p for p in re.split(r"_+", method) if p]
    return f"{handler}." + "".join(p[:1].upper() + p[1:] for p in parts)


def _stream_item(tp: Any) -> tuple[bool, Any]:
    """(True, T) for ``AsyncIterator[T]`` and its kin; (False, tp) otherwise."""
    origin = typing.get_origin(tp)
    if origin in _ASYNC_ITERATORS:
        args = typing.get_args(tp)
        return True, (args[0] if args else Any)
    if tp in _ASYNC_ITERATORS:
        return True, Any
    return False, tp


def endpoints_of(handler: object, *, name: str | None = None) -> list[Endpoint]:
    """The endpoints of a handler object, named ``<name or class name>.<Method>``.

    Raises ``TypeError`` naming the method when one cannot be an endpoint (a sync
    method, or more than one request parameter), so mistakes show at start-up.
    """
    prefix = name or type(handler).__name__
    found: list[Endpoint] = []
    for attr in sorted(dir(type(handler))):
        if attr.startswith("_"):
            continue
        member = getattr(handler, attr)
        if not callable(member) or isinstance(member, type):
            continue
        func = inspect.unwrap(member)
        is_gen = inspect.isasyncgenfunction(func)
        if not (is_gen or inspect.iscoroutinefunction(func)):
            raise TypeError(
                f"{prefix}.{attr} must be 'async def' to be an endpoint (prefix it with _ to hide it)"
            )
        found.append(_endpoint(prefix, attr, member, func, is_gen))
    return found


def _endpoint(prefix: str, attr: str, member: Any, func: Any, is_gen: bool) -> Endpoint:
    full = endpoint_name(prefix, attr)
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:
        raise TypeError(f"cannot resolve the type hints of {full}: {exc}") from exc
    params = list(inspect.signature(member).parameters.values())
    if len(params) > 1:
        raise TypeError(f"{full} must take at most one parameter, the request")
    takes_request = bool(params)
    req_hint = hints.get(params[0].name, Any) if params else None
    client_streams, req_type = _stream_item(req_hint) if params else (False, None)
    ret_hint = hints.get("return", Any)
    if is_gen:
        _, resp_type = _stream_item(ret_hint)
        kind: Kind = "bidi" if client_streams else "server"
    else:
        resp_type = ret_hint
        kind = "client" if client_streams else "unary"
    metadata = {"stream": "true", "stream_type": kind} if kind != "unary" else {}
    if getattr(func, _IDEMPOTENT, False):
        metadata["idempotent"] = "true"
    return Endpoint(
        name=full,
        kind=kind,
        func=member,
        request_type=req_type if req_type is not None else Any,
        response_type=resp_type,
        takes_request=takes_request,
        metadata=metadata,
    )
