"""A namespace and an admin of it, made on a running test server for one test.

The session-scoped server of :mod:`micro.testing` is shared by every test of a run; what
keeps the tests apart is that each gets a namespace of its own (registry domain, store
database, config tree, topics, rules), as tenants of one platform are kept apart. The
namespace's admin is a *user* account (a service account is never an admin), and the
test acts as it the way a developer does: a login in a ``MICRO_HOME`` of the test's own,
with ``MICRO_NAMESPACE`` naming the namespace, so every call is in that namespace alone.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from micro.testing import MicroServerProcess

__all__ = ["MicroNamespace", "create_namespace"]

ADMIN = "admin"
"""The id of each test namespace's admin account."""


@dataclass(frozen=True)
class MicroNamespace:
    """A namespace of a shared test server, and how to act in it as its admin."""

    name: str
    server: MicroServerProcess
    home: Path
    """A ``MICRO_HOME`` whose CLI login is the namespace's admin."""
    account: str
    secret: str

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a subprocess (the CLI, a service) acting in the namespace."""
        env = self.server.env(MICRO_HOME=str(self.home), MICRO_NAMESPACE=self.name, **extra)
        env.pop("MICRO_ADMIN_PASSWORD", None)  # the platform's admin is not this test's
        return env

    def micro(
        self, *args: str, input: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``micro`` command as the namespace's admin."""
        return subprocess.run(
            [sys.executable, "-m", "micro", *args],
            env=self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def create_namespace(server: MicroServerProcess, home: Path) -> MicroNamespace:
    """Make a fresh namespace on ``server`` with an admin, logged in under ``home``.

    Runs in a thread of its own with its own event loop, so that it neither needs nor
    disturbs the test's loop (the fixture calling it is synchronous).
    """
    home.mkdir(parents=True, exist_ok=True)
    ns = MicroNamespace(
        name=f"test-{secrets.token_hex(5)}",
        server=server,
        home=home,
        account=ADMIN,
        secret=secrets.token_urlsafe(16),
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_create(ns))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="micro-test-namespace")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return ns


async def _create(ns: MicroNamespace) -> None:
    from micro.auth.client import RPCAuth
    from micro.auth.credentials import Credentials
    from micro.client import new_client
    from micro.settings import load

    # The platform admin (the server's home is logged in as it) makes the account, in the
    # new namespace: one namespace per call.
    platform = new_client(load(ns.server.env()), namespace=ns.name)
    try:
        await RPCAuth(platform).generate(
            ns.account, secret=ns.secret, scopes=["admin"], namespace=ns.name
        )
    finally:
        await platform.close()
    mine = load(ns.env())
    client = new_client(mine, namespace=ns.name, identity=False)
    try:
        token = await RPCAuth(client).token(id=ns.account, secret=ns.secret, namespace=ns.name)
    finally:
        await client.close()
    Credentials.for_settings(mine).save(ns.account, token)
