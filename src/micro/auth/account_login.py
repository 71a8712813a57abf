"""A service's own identity: its account (``MICRO_AUTH_ID``/``MICRO_AUTH_SECRET``, handed
out by the runtime), logged in on first use and refreshed before its token expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from micro import errors
from micro.auth.base import Auth, Token
from micro.rpc.types import ClientCall, ClientMiddleware, Next

__all__ = ["AccountLogin"]

_EARLY = 60.0
"""Refresh when less than this many seconds are left, as Micro's services do."""


class AccountLogin:
    """Keeps an access token for one account fresh."""

    def __init__(self, id: str, secret: str, *, namespace: str) -> None:
        self._id = id
        self._secret = secret
        self._namespace = namespace
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def access_token(self, auth: Auth) -> str:
        """A valid access token: the cached one, refreshed, or a new login."""
        token = self._token
        if token is not None and token.expiry - time.time() > _EARLY:
            return token.access_token
        async with self._lock:
            token = self._token
            if token is not None and token.expiry - time.time() > _EARLY:
                return token.access_token
            if token is not None:
                try:
                    self._token = await auth.token(
                        refresh_token=token.refresh_token, namespace=self._namespace
                    )
                    return self._token.access_token
                except errors.Unauthorized:
                    pass  # refresh token revoked: log in again with the secret
            self._token = await auth.token(
                id=self._id, secret=self._secret, namespace=self._namespace
            )
            return self._token.access_token

    def middleware(self, auth_factory: Callable[[], Auth]) -> ClientMiddleware:
        """Client middleware that calls as this account (never on ``Auth.Token`` itself)."""
        made: list[Auth] = []

        async def middleware(call: ClientCall, nxt: Next) -> Any:
            if "authorization" not in call.metadata and not (
                call.service == "auth" and call.endpoint == "Auth.Token"
            ):
                if not made:
                    made.append(auth_factory())
                call.metadata["authorization"] = f"Bearer {await self.access_token(made[0])}"
            return await nxt(call)

        return middleware
