"""What the edges pass on of what their clients send.

The gateway and the gRPC edge turn a client's headers into call metadata and hand the call
to the server's forwarder in process, where metadata is trusted as the edge wrote it. So an
edge never passes on what only the platform may say, and says itself where the call came
from:

- ``micro-caller-*`` (who the caller is) is written by doors only: a client's is dropped.
- ``micro-remote-address`` is the client's address as the edge saw it (``host:port``,
  the peer of its socket), whatever the client sent; login throttling keys on it.
- ``proxy-authorization`` is a credential for a proxy, never for a service: dropped.
- The dashboard's cookies (every name starting ``micro-`` or ``__Host-micro-``: its session,
  its CSRF token) are removed from ``cookie``: a browser sends them to any port of the
  dashboard's host, the gateway's included, and they must never reach a service. (The
  gateway never reads a token from a cookie either.)
"""

from __future__ import annotations

from typing import Final

from micro.rpc.server import REMOTE_ADDRESS

__all__ = [
    "CALLER_PREFIX",
    "REMOTE_ADDRESS",
    "from_client",
    "grpc_peer_address",
    "without_dashboard_cookies",
]

CALLER_PREFIX: Final = "micro-caller-"
"""Metadata keys only doors write (``micro-caller-id``, ``-namespace``, ``-type``, ``-scopes``)."""

_DROPPED: Final = (CALLER_PREFIX, "proxy-authorization")
_DASHBOARD_COOKIES: Final = ("micro-", "__host-micro-")


def from_client(metadata: dict[str, str], remote: str | None) -> dict[str, str]:
    """``metadata`` (lower-case keys, from a client), cleaned in place as the module says,
    with ``remote`` as its :data:`REMOTE_ADDRESS` (removed when the edge has none)."""
    for key in [k for k in metadata if k.startswith(_DROPPED)]:
        del metadata[key]
    cookie = metadata.get("cookie")
    if cookie is not None:
        kept = without_dashboard_cookies(cookie)
        if kept:
            metadata["cookie"] = kept
        else:
            del metadata["cookie"]
    if remote:
        metadata[REMOTE_ADDRESS] = remote
    else:
        metadata.pop(REMOTE_ADDRESS, None)
    return metadata


def without_dashboard_cookies(header: str) -> str:
    """A ``Cookie`` header without the dashboard's cookies (names compared without case,
    as browsers compare the ``__Host-`` prefix)."""
    kept = [
        part.strip()
        for part in header.split(";")
        if part.strip() and not part.strip().lower().startswith(_DASHBOARD_COOKIES)
    ]
    return "; ".join(kept)


def grpc_peer_address(peer: str) -> str | None:
    """``host:port`` of a grpc peer (``ipv4:10.0.0.1:5000``, ``ipv6:[::1]:5000``), as the
    native wire writes a socket's peer; ``unix`` for a Unix socket."""
    kind, _, where = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host, _, port = where.rpartition(":")
        return f"{host.strip('[]')}:{port}"
    return "unix" if kind.startswith("unix") else None
