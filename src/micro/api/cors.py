"""CORS at the gateway: off unless ``MICRO_API_CORS_ORIGINS`` lists origins.

A listed origin is allowed by name (and answers vary by ``Origin``); ``*`` allows any page.
Neither ever comes with ``Access-Control-Allow-Credentials``: the gateway takes no cookie
for a credential, so a page that calls it sends a token it holds itself, and a page on
another port of the same host (which the browser sends the dashboard's cookies to) gains
nothing by the visitor being logged in. The headers are made once per allowed origin:
what a request's ``Origin`` says is never kept, so no caller can grow anything here.
"""

from __future__ import annotations

from typing import Final

__all__ = ["Cors"]

_METHODS: Final = b"POST, PATCH, GET, OPTIONS, PUT, DELETE"
_HEADERS: Final = (
    b"Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization, "
    b"Micro-Namespace"
)
_VARY: Final = [(b"vary", b"Origin")]

Headers = list[tuple[bytes, bytes]]


class Cors:
    """The CORS headers of the gateway's answers."""

    __slots__ = ("_any", "_listed", "by_origin")

    def __init__(self, origins: tuple[str, ...]) -> None:
        self._listed: dict[str, Headers] = {
            origin: [*_allow(origin), *_VARY] for origin in origins if origin != "*"
        }
        self._any: Headers | None = _allow("*") if "*" in origins else None
        self.by_origin = self._any is None and bool(self._listed)
        """Whether the answer depends on the request's ``Origin`` (else pass ``""``)."""

    def headers(self, origin: str) -> Headers:
        """The headers to answer a request from ``origin`` (``""``: none sent) with."""
        if self._any is not None:
            return self._any
        if not self._listed:
            return []
        return self._listed.get(origin) or _VARY


def _allow(origin: str) -> Headers:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", _METHODS),
        (b"access-control-allow-headers", _HEADERS),
    ]
