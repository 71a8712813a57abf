"""The client's side of bound tokens: a call straight to a service's node carries a token
only that service takes, got from ``Auth.Exchange`` for the caller's own.

A client (a service calling another, the CLI calling a node at its address) holds a
platform token; sending it to a node would hand it to whatever code runs there. So the
client asks the server, through the proxy, for a token of the same account bound to the
service it calls (:mod:`micro.auth.bound`), and caches it until a minute before it
expires: one round trip per (caller token, service) every few minutes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from micro._bounded import BoundedDict
from micro.auth.base import Auth
from micro.auth.door import bearer

__all__ = ["TokenExchange"]

_EARLY: Final = 60.0
_CACHE_BYTES: Final = 8 * 1024 * 1024


class TokenExchange:
    """The :data:`micro.rpc.client.Exchange` of a client: ``auth`` (made on first use)
    is the ``auth`` service as that client reaches it."""

    def __init__(self, auth: Callable[[], Auth]) -> None:
        self._make_auth = auth
        self._auth: Auth | None = None
        self._cache: BoundedDict[tuple[str, str, str], tuple[str, float]] = BoundedDict(
            _CACHE_BYTES
        )
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def __call__(self, authorization: str, service: str, namespace: str) -> str:
        key = (authorization, namespace, service)
        cached = self._cache.get(key)
        if cached is not None and cached[1] - time.time() > _EARLY:
            return cached[0]
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # one exchange for the calls that need the same token at once
                cached = self._cache.get(key)
                if cached is not None and cached[1] - time.time() > _EARLY:
                    return cached[0]
                if self._auth is None:
                    self._auth = self._make_auth()
                token = await self._auth.exchange(
                    bearer(authorization), service=service, namespace=namespace
                )
                value = f"Bearer {token.access_token}"
                self._cache.set(key, (value, float(token.expiry)))
                return value
        finally:
            if not lock.locked():
                self._locks.pop(key, None)
