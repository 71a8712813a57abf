"""Input checks shared by the auth implementations: one clear 400 for each mistake.

Namespaces are store-safe names; account ids, names and rule ids may hold anything
printable but ``/`` (they end store keys, and ``/`` would let one id's keys be read as
another's prefix).
"""

from __future__ import annotations

import re
from typing import Final

from micro import errors
from micro.auth.base import Rule

__all__ = [
    "DEFAULT_EXPIRY",
    "check_expiry",
    "check_id",
    "check_namespace",
    "check_rule",
]

DEFAULT_EXPIRY: Final = 15 * 60.0
"""An access token's life when 0 is asked (Micro's token provider default), and the
longest one may live unless the server says otherwise (``MICRO_AUTH_TOKEN_TTL``)."""

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ID = re.compile(r"[^/\x00-\x1f\x7f]{1,256}")


def check_namespace(namespace: str, error_id: str = "auth") -> None:
    """Letters, digits, ``_ . -``, at most 128 characters."""
    if not _NAMESPACE.fullmatch(namespace):
        raise errors.BadRequest(
            error_id,
            f"invalid namespace {namespace!r}: use letters, digits, '_', '.' or '-' "
            "(at most 128, starting with a letter or digit)",
        )


def check_id(value: str, what: str = "ID", error_id: str = "auth") -> None:
    """An id or name: present, at most 256 characters, no ``/`` or control characters."""
    if not value:
        raise errors.BadRequest(error_id, f"{what} missing")
    if not _ID.fullmatch(value):
        raise errors.BadRequest(
            error_id,
            f"invalid {what.lower()} {value!r}: at most 256 characters, no '/' or control characters",
        )


def check_rule(rule: Rule, error_id: str = "auth") -> None:
    """Micro's checks of a rule to create: ``ID missing``, ``Resource missing``."""
    check_id(rule.id, "ID", error_id)
    resource = rule.resource
    if not (resource.type and resource.name and resource.endpoint):
        raise errors.BadRequest(error_id, "Resource missing")
    if rule.access not in ("granted", "denied"):
        raise errors.BadRequest(error_id, "Access missing")


def check_expiry(expiry: float, longest: float, error_id: str = "auth") -> float:
    """The access token life to use: ``expiry`` seconds (the default for 0), at most
    ``longest``: a caller may ask for less than the server allows, never more."""
    if expiry < 0:
        raise errors.BadRequest(error_id, "token expiry must not be negative")
    return min(expiry or DEFAULT_EXPIRY, longest)
