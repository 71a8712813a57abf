"""The door of a process that is not the server: a user service, or a block run alone.

It verifies tokens locally with the server's public key (fetched once from the ``auth``
service) and checks the rules of its namespace and the revoked tokens of the callers'
namespaces (fetched once, then dropped whenever the auth service says they changed), so
no call costs a round trip to auth.

A user service's door (``service`` given) takes only tokens bound to that service, which
is what the proxy and every client send it (:mod:`micro.auth.bound`); a platform token,
which would open every door its account may pass, is refused, so a service is never
handed one it could replay. A block run alone is part of the platform and takes platform
tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from micro import errors
from micro.auth.base import Rule, Verified, audience
from micro.auth.client import RPCAuth
from micro.auth.door import Door
from micro.rpc.client import Client

if TYPE_CHECKING:
    from micro.auth.keys import KeyPair

__all__ = ["RemoteDoor"]

log = logging.getLogger("micro.auth")


class RemoteDoor:
    """A :class:`Door` fed by the ``auth`` service over RPC."""

    def __init__(self, client: Client, *, namespace: str | None, service: str = "") -> None:
        self._auth = RPCAuth(client)
        self._keys: KeyPair | None = None  # made from the public key on the first token
        self._namespace = namespace
        self._audience = ""
        if service:
            self._audience = audience(namespace or "micro", service)
        self.door = Door(self._verify, self._rules, revocations=self._revoked, namespace=namespace)
        self._follow: asyncio.Task[None] | None = None

    async def _verify(self, token: str) -> Verified:
        if self._keys is None:
            # Imported on the first token, not at start: PyJWT and cryptography cost an idle
            # service about 12 MB, and many services never see a token.
            from micro.auth.keys import KeyPair

            try:
                self._keys = KeyPair.from_public_pem(await self._auth.public_key())
            except errors.ConnectionError as exc:
                raise errors.ServiceUnavailable(
                    "auth", f"cannot verify tokens: {exc.detail}"
                ) from None
        return await self._keys.verify_token(token, audience=self._audience)

    async def _rules(self, namespace: str) -> list[Rule]:
        return await self._auth.rules(namespace=namespace)

    async def _revoked(self, namespace: str) -> dict[str, str]:
        return await self._auth.revoked(namespace=namespace)

    def start(self) -> None:
        """Follow rule changes and revocations (reconnecting, with a pause, when the
        watch ends)."""
        self._follow = asyncio.get_running_loop().create_task(self._follow_rules())

    async def _follow_rules(self) -> None:
        while True:
            watcher = self._auth.watch_rules(self._namespace)
            try:
                async for namespace in watcher:
                    self.door.forget(None if namespace == "*" else namespace)
            except errors.MicroError as exc:
                log.debug("rules watch ended: %s", exc.detail)
            finally:
                await watcher.stop()
            # The watch ended (server restart, no access yet): cached rules may be stale.
            self.door.forget()
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        """Stop following rule changes."""
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
