"""What replicas of one cluster need to know of each other: which one adopts a service
whose replica is gone, whether a replica still answers, and the status a replica keeps on
the store for the others to show (see :mod:`micro.runtime.local`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import msgspec

from micro.runtime.base import Service
from micro.wire.transport import parse_address

__all__ = ["Key", "Status", "adopter", "reachable", "with_replica"]

Key = tuple[str, str, str]
"""A service's identity: (namespace, name, version)."""


class Status(msgspec.Struct, omit_defaults=True):
    """A service as its replica last described it, for the other replicas to show."""

    service: Service
    replica: str
    address: str = ""
    """The replica's proxy: where to check that it is still there."""
    env: str = ""
    """The service's environment variables, sealed (``service.env`` is kept empty)."""


def adopter(live: set[str], key: Key) -> str:
    """The replica among ``live`` that adopts ``key``: the same answer on every replica
    with the same view, and spread evenly (rendezvous hashing)."""
    name = "\0".join(key)
    return max(sorted(live), key=lambda r: hashlib.sha256(f"{r}\0{name}".encode()).digest())


def with_replica(service: Service, replica: str) -> Service:
    return msgspec.structs.replace(service, metadata={**service.metadata, "replica": replica})


async def reachable(address: str) -> bool:
    """Whether a replica's proxy still accepts connections: a replica killed a moment
    ago is known dead at once, long before its lease lapses."""
    try:
        where = parse_address(address)
    except ValueError:
        return True  # not an address this can check: trust the lease
    try:
        if where.path:
            connect = asyncio.open_unix_connection(where.path)
        else:
            connect = asyncio.open_connection(where.host, where.port)
        _, writer = await asyncio.wait_for(connect, 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
