"""Helpers the store's backends share: key ranges for prefix reads, names on disk and in
SQL, and backend addresses fit to show in an error message."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["bytes_prefix_end", "decode_name", "encode_name", "prefix_end", "redact"]

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    So ``prefix <= key < prefix_end(prefix)`` holds exactly for the keys that start with
    ``prefix``, in code point order (which is UTF-8 byte order: SQLite's ``BINARY`` and
    PostgreSQL's ``"C"`` collation). ``None`` when there is no such bound (an empty prefix,
    or one made only of U+10FFFF): then every key from ``prefix`` on matches.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if last in _SURROGATES:
            last = _SURROGATES.stop
        if last <= _MAX_CODE_POINT:
            return "".join(chars) + chr(last)
    return None


def bytes_prefix_end(prefix: bytes) -> bytes | None:
    """:func:`prefix_end` for byte strings (Redis's lexicographic ranges)."""
    raw = bytearray(prefix)
    while raw:
        last = raw.pop() + 1
        if last <= 0xFF:
            raw.append(last)
            return bytes(raw)
    return None


def encode_name(name: str) -> str:
    """A database or table name (already checked) as a name safe where case is ignored.

    SQLite identifiers and some file systems do not tell ``Users`` from ``users``; store
    names do. Every upper-case letter becomes ``^`` and its lower case (``^`` is not
    allowed in a store name, so the mapping is one to one).
    """
    if not any(c.isupper() for c in name):
        return name
    return "".join(f"^{c.lower()}" if c.isupper() else c for c in name)


def decode_name(encoded: str) -> str:
    """The store name :func:`encode_name` made ``encoded`` from."""
    if "^" not in encoded:
        return encoded
    out: list[str] = []
    upper = False
    for c in encoded:
        if c == "^":
            upper = True
            continue
        out.append(c.upper() if upper else c)
        upper = False
    return "".join(out)


def redact(address: str) -> str:
    """``address`` without its password, to name a backend in an error message or a log."""
    try:
        parts = urlsplit(address)
        if parts.password is None:
            return address
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:***@{host}"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable address>"
