"""Three ``micro server`` replicas in the ``cluster`` profile, for the tests of this folder.

They share the machine's PostgreSQL and NATS (under a prefix of their own, so nothing
else sees them) and an etcd the tests start, and each has its own ``MICRO_HOME`` and
ports, as separate hosts would. Replicas are named ``r0``, ``r1``, ``r2``
(``MICRO_REPLICA``), and declare a replica dead 3 s after it stops renewing its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests._support import require_nats, require_postgres

from micro.server.profiles import cluster_env
from micro.testing import MicroServerProcess, start_server

__all__ = ["replicas"]


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@contextlib.contextmanager
def replicas(root: Path, etcd: str, count: int = 3) -> Iterator[list[MicroServerProcess]]:
    """``count`` replicas on fresh state, stopped (and their schema dropped) afterwards."""
    store = asyncio.run(require_postgres())
    nats = asyncio.run(require_nats())
    prefix = f"cluster_{uuid.uuid4().hex[:10]}"
    env = cluster_env(store=store, nats=nats, registry=etcd)
    env.update(
        MICRO_PREFIX=prefix,
        MICRO_REPLICA_TTL="3",
        MICRO_ADMIN_PASSWORD=secrets.token_urlsafe(12),
    )
    started: list[MicroServerProcess] = []
    try:
        for n in range(count):
            started.append(start_server(root / f"r{n}", env={**env, "MICRO_REPLICA": f"r{n}"}))
        yield started
    finally:
        for server in started:
            server.stop()
        asyncio.run(_drop_schema(store, prefix))
