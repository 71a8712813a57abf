"""The dashboard's calls to the platform, made as the logged-in account.

Every page gets what it shows, and does what it does, through the same RPC endpoints the
CLI uses, with the user's token and namespace in the call's metadata: the dashboard can do
nothing the account could not do with ``micro``. Calls go to the proxy's forwarder
in-process (an :class:`~micro.rpc.upstream.Upstream`), so they pass the same door. Each
call says where the browser is (``micro-remote-address``), as every edge does: login
throttling counts failures per account and client address.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from micro import errors
from micro.codec import JSON
from micro.rpc.upstream import Upstream
from micro.wire.frames import RequestHeader
from micro.wire.stream import Stream

__all__ = ["Caller"]

_TIMEOUT_MS: Final = 10_000.0
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Caller:
    """Calls services as one account, in one namespace."""

    def __init__(
        self, upstream: Upstream, *, token: str = "", namespace: str = "micro", remote: str = ""
    ) -> None:
        self.upstream = upstream
        self.token = token
        self.namespace = namespace
        self.remote = remote
        """The browser's ``host:port``."""

    def within(self, namespace: str) -> Caller:
        """The same account calling in ``namespace`` (a call acts in one namespace only:
        a page about another database, say, calls in that one)."""
        return Caller(self.upstream, token=self.token, namespace=namespace, remote=self.remote)

    def metadata(self) -> dict[str, str]:
        """The metadata every call carries: who, where, and from which browser."""
        metadata = {"micro-namespace": self.namespace}
        if self.remote:
            metadata["micro-remote-address"] = self.remote
        if self.token:
            metadata["authorization"] = f"Bearer {self.token}"
        return metadata

    def header(self, service: str, endpoint: str, timeout_ms: float = _TIMEOUT_MS) -> RequestHeader:
        """The native call's header for ``service``'s ``endpoint``."""
        return RequestHeader(service, endpoint, JSON, timeout_ms, self.metadata())

    async def call(self, service: str, endpoint: str, request: Any = None) -> Any:
        """Call with a JSON-able request (a dict, a Struct, or raw JSON bytes); the decoded
        JSON answer. Raises the call's :class:`~micro.errors.MicroError`."""
        body = (
            request if isinstance(request, bytes) else _encode({} if request is None else request)
        )
        data = await self.upstream.unary(self.header(service, endpoint), body)
        return _decode(data) if data else None

    async def stream(self, service: str, endpoint: str, request: Any = None) -> Stream:
        """Open a server stream; read raw JSON messages with ``await stream.recv()``."""
        body = (
            request if isinstance(request, bytes) else _encode({} if request is None else request)
        )
        return await self.upstream.open_stream(self.header(service, endpoint, 0.0), body)

    async def try_call(self, service: str, endpoint: str, request: Any = None) -> Any:
        """:meth:`call`, but ``None`` for a 404 (a thing that is not there)."""
        try:
            return await self.call(service, endpoint, request)
        except errors.NotFound:
            return None
