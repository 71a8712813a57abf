"""Auth at the server's doors: the door in front of the proxy listener, kept fresh by
the auth block's rule changes and revocations, the tokens the proxy hands the services it
calls, and the first admin account.

The first admin's password follows ARCHITECTURE.md: ``MICRO_ADMIN_PASSWORD`` when set;
otherwise ``micro`` while every listener is on loopback; otherwise a generated one,
printed once, when the account is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import sys

from micro.auth.base import Rule
from micro.auth.bound import BoundTokens
from micro.auth.door import Door
from micro.auth.store import StoreAuth
from micro.rpc.client import CORE_SERVICES
from micro.settings import Settings
from micro.wire.transport import parse_address

__all__ = ["Gate", "admin_password", "on_loopback"]

log = logging.getLogger("micro.server")


def on_loopback(address: str) -> bool:
    """True when a listen address accepts connections from this host only."""
    try:
        parsed = parse_address(address)
    except ValueError:
        return False
    if parsed.is_unix:
        return True
    if parsed.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(parsed.host).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name


def admin_password(settings: Settings, listeners: list[str]) -> tuple[str, bool]:
    """(the first admin's password, whether it was generated and must be shown)."""
    if settings.admin_password:
        return settings.admin_password, False
    if all(on_loopback(address) for address in listeners):
        return "micro", False
    return secrets.token_urlsafe(18), True


class Gate:
    """The server's door, with rule changes and revocations from the auth block dropping
    its caches. A namespace's admins always pass it for the platform's own services,
    whatever the namespace's rules say, so no rule can lock them out of changing rules."""

    def __init__(self, auth: StoreAuth) -> None:
        self.auth = auth
        self.door = Door(
            auth.keys.verify_token,
            self._rules,
            revocations=self._revoked,
            admins_pass=CORE_SERVICES,
        )
        self.bound = BoundTokens(auth.keys)
        """Tokens for the services the proxy calls, in place of their callers' own."""
        self._watch: asyncio.Task[None] | None = None

    async def _rules(self, namespace: str) -> list[Rule]:
        return await self.auth.rules(namespace=namespace)

    async def _revoked(self, namespace: str) -> dict[str, str]:
        return await self.auth.revoked(namespace=namespace)

    async def start(self, settings: Settings, listeners: list[str]) -> None:
        """Create the first admin if needed and follow rule changes."""
        password, generated = admin_password(settings, listeners)
        created = await self.auth.bootstrap(password)
        if created is not None and generated:
            # Shown once, on the terminal that started the server; never logged.
            sys.stdout.write(f"Created account admin with password: {password}\n")
            sys.stdout.flush()
        self._watch = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        watcher = self.auth.watch_rules(None)
        try:
            async for namespace in watcher:
                self.door.forget(None if namespace == "*" else namespace)
                self.bound.forget()
        finally:
            await watcher.stop()

    async def stop(self) -> None:
        """Stop following rule changes."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
