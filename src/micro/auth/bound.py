"""Tokens bound to one service: what a call to a user service carries instead of its
caller's own token.

A caller's platform token opens every door of the platform it may pass; a service that
received one could replay it (an admin's, say) anywhere. So no door sends one on. The
proxy, which holds the signing key, mints for each (caller token, service) a token for the
same account whose audience is that one service (:func:`micro.auth.keys.audience`), living
no longer than the caller's and at most :data:`LIFE`; clients outside the server get the
same from ``Auth.Exchange``. Minting costs an RSA signature, so tokens are cached until a
minute before they expire, in a cache bounded by bytes.
"""

from __future__ import annotations

import time
from typing import Final

from micro._bounded import BoundedDict
from micro.auth.base import Verified, audience
from micro.auth.keys import KeyPair

__all__ = ["LIFE", "BoundTokens"]

LIFE: Final = 300.0
"""The longest a bound token lives, in seconds."""

_EARLY: Final = 60.0
"""Mint anew when a cached token has less than this left (it must outlive the call)."""

_CACHE_BYTES: Final = 32 * 1024 * 1024


class BoundTokens:
    """Mints and caches tokens bound to one service, with the server's key."""

    def __init__(self, keys: KeyPair) -> None:
        self._keys = keys
        self._cache: BoundedDict[tuple[str, str, str], tuple[str, float]] = BoundedDict(
            _CACHE_BYTES
        )

    def token(self, header: str, verified: Verified, namespace: str, service: str) -> str:
        """A token for ``service`` of ``namespace`` as the account ``verified`` (from the
        caller's ``authorization`` value ``header``, the cache's key) says."""
        key = (header, namespace, service)
        now = time.time()
        cached = self._cache.get(key)
        if cached is not None and cached[1] - now > _EARLY:
            return cached[0]
        life = min(verified.expires - now, LIFE)
        token = self._keys.sign(
            verified.account,
            expiry=life,
            now=now,
            epoch=verified.epoch,
            audience=audience(namespace, service),
        )
        self._cache.set(key, (token, now + life))
        return token

    def forget(self) -> None:
        """Drop every cached token (their accounts' tokens may have been revoked)."""
        self._cache.clear()
