"""Which service and endpoint an HTTP path names, and which namespace a host or a token
names.

Micro's ``micro`` resolver (reference §4.2), exactly::

    /foo                  foo          Foo.Call
    /foo/bar              foo          Foo.Bar
    /foo/foo/bar          foo          Foo.Bar
    /foo/bar/baz          foo          Bar.Baz
    /foo/bar/baz-xyz      foo          Bar.BazXyz
    /foo/bar/baz/cat      foo.bar      Baz.Cat
    /v1/foo/bar           v1.foo       Foo.Bar

Method parts are title-cased after splitting on ``-`` (``baz-xyz`` -> ``BazXyz``,
``fooBar`` -> ``FooBar``).

Both answers are cached for the hot path, for paths and hosts of a usual length only: what
a caller sends can be as long as the header limit, and a cache of those would hold megabytes.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from functools import lru_cache
from typing import Final

import msgspec

__all__ = ["resolve", "subdomain_namespace", "token_issuer"]

_VERSION: Final = re.compile(r"v\d+")
_CACHED_LENGTH: Final = 256
"""Paths and hosts up to this many characters are cached."""


def _title(part: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in part.split("-") if p)


def resolve(path: str) -> tuple[str, str] | None:
    """(service, endpoint) for a request path; ``None`` when it names nothing."""
    return _resolve_cached(path) if len(path) <= _CACHED_LENGTH else _resolve(path)


def _resolve(path: str) -> tuple[str, str] | None:
    parts = [p for p in path.split("/") if p and p != "."]
    if not parts or ".." in parts:
        return None
    if _VERSION.fullmatch(parts[0]) and len(parts) >= 3:
        # /v1/foo/bar -> v1.foo Foo.Bar; /v1/foo/bar/baz -> v1.foo Bar.Baz
        head, rest = f"{parts[0]}.{parts[1]}", parts[2:]
        if len(rest) == 1:
            return head, f"{_title(parts[1])}.{_title(rest[0])}"
        return _deep(head, rest)
    if len(parts) == 1:
        return parts[0], f"{_title(parts[0])}.Call"
    if len(parts) == 2:
        return parts[0], f"{_title(parts[0])}.{_title(parts[1])}"
    return _deep(parts[0], parts[1:])


def _deep(service: str, rest: list[str]) -> tuple[str, str]:
    """The last two parts are Handler.Method; the ones before them join the service name
    (``/foo/bar/baz/cat`` -> ``foo.bar`` ``Baz.Cat``); ``/foo/foo/bar`` is ``Foo.Bar``."""
    if len(rest) == 2:
        return service, f"{_title(rest[0])}.{_title(rest[1])}"
    return ".".join([service, *rest[:-2]]), f"{_title(rest[-2])}.{_title(rest[-1])}"


def subdomain_namespace(host: str) -> str | None:
    """Micro's subdomain rule: ``staging.foo.myapp.com`` -> ``foo-staging``; ``None`` for an
    IP, ``localhost``, a bare domain or the ``api`` subdomain."""
    return _subdomain_cached(host) if len(host) <= _CACHED_LENGTH else _subdomain(host)


def _subdomain(host: str) -> str | None:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]").lower()
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    labels = [label for label in name.split(".") if label]
    if len(labels) <= 2 or labels[-1] == "localhost":
        return None  # bare registrable domain (no public-suffix list: two labels) or localhost
    sub = labels[:-2]
    if sub == ["api"]:
        return None
    return "-".join(reversed(sub))


def token_issuer(authorization: str) -> str:
    """The ``iss`` claim of a ``Bearer`` JWT, read only to route (the door verifies the
    token); ``""`` when there is none."""
    parts = authorization.rpartition(" ")[2].split(".")
    if len(parts) != 3:
        return ""
    try:
        claims = msgspec.json.decode(
            base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        )
    except (ValueError, msgspec.DecodeError):
        return ""
    return str(claims.get("iss", "")) if isinstance(claims, dict) else ""


_resolve_cached = lru_cache(maxsize=4096)(_resolve)
_subdomain_cached = lru_cache(maxsize=1024)(_subdomain)
