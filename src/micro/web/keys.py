"""The dashboard's own key: it seals the session cookie and makes the CSRF tokens, so
that neither can be made or altered by anything but a dashboard holding it.

Where the key comes from, the first that is there:

1. ``MICRO_WEB_SECRET``: any text of at least 32 characters. For ``micro web`` run
   alone, and for several of them behind one address (they must share it).
2. The server's auth private key (``MICRO_AUTH_PRIVATE_KEY``, else
   ``MICRO_HOME/server/auth_key.pem`` when it exists and can be read): the dashboard of
   ``micro server``. Every replica of a cluster already shares that key, so a session
   made by one replica's dashboard holds at the others' with nothing more to set.
3. ``MICRO_HOME/web_secret_key``, 32 random bytes generated (mode 0600) on first use:
   ``micro web`` alone on a machine that does not hold the server's key.

Two keys are derived from it (HKDF-SHA256), one per use, so that neither can stand in
for the other and the auth key itself is never used for anything but signing tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from micro.settings import Settings

__all__ = ["KEY_FILE", "MIN_SECRET", "WebKeys"]

KEY_FILE: Final = "web_secret_key"
"""The generated key's file name under ``MICRO_HOME``."""
MIN_SECRET: Final = 32
"""The shortest ``MICRO_WEB_SECRET`` taken (characters)."""
_NONCE: Final = 12


def _derive(material: bytes, use: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=use).derive(material)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _auth_key(settings: Settings, environ: Mapping[str, str]) -> bytes | None:
    """The server's auth private key as PEM, when this process holds it (never made here:
    a dashboard that is not the server's must not mint an auth key of its own)."""
    from micro.auth.keys import KEY_FILE as AUTH_KEY_FILE
    from micro.auth.keys import PRIVATE_KEY_VAR, KeyPair

    try:
        given = bool(environ.get(PRIVATE_KEY_VAR, "").strip())
        if not given and not (settings.home / AUTH_KEY_FILE).exists():
            return None
        pair = KeyPair.from_settings(settings, environ)
    except PermissionError:
        return None  # the server's home is not ours: a dashboard run alone
    return pair.private_pem() if pair.can_sign else None


def _own_key(path: Path) -> bytes:
    """The key file's 32 bytes, generated when missing (the first writer wins)."""
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except FileNotFoundError:
        key = None
    except (binascii.Error, ValueError):
        key = b""
    if key is not None:
        if len(key) != 32:
            raise ValueError(f"{path} is not a key: delete it to make a new one")
        return key
    key = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _own_key(path)
    with os.fdopen(fd, "w") as file:
        file.write(base64.b64encode(key).decode() + "\n")
    return key


class WebKeys:
    """Seals and opens the session cookie; makes tokens bound to a value."""

    def __init__(self, material: bytes) -> None:
        self._aead = AESGCM(_derive(material, b"micro web session cookie"))
        self._mac_key = _derive(material, b"micro web csrf token")

    @classmethod
    def generate(cls) -> WebKeys:
        """Keys of a dashboard's own, in memory only (tests)."""
        return cls(os.urandom(32))

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> WebKeys:
        """The dashboard's keys (see the module's docstring for where they come from).
        Raises ``ValueError`` naming the setting or file when the secret there is unfit."""
        env = os.environ if environ is None else environ
        if settings.web_secret is not None:
            if len(settings.web_secret) < MIN_SECRET:
                raise ValueError(f"MICRO_WEB_SECRET must be at least {MIN_SECRET} characters")
            return cls(settings.web_secret.encode())
        material = _auth_key(settings, env)
        return cls(material if material is not None else _own_key(settings.home / KEY_FILE))

    def seal(self, data: bytes, *, purpose: str) -> str:
        """``data`` encrypted and authenticated, as cookie-safe text; it opens only for the
        same ``purpose``."""
        nonce = os.urandom(_NONCE)
        return _b64(nonce + self._aead.encrypt(nonce, data, purpose.encode()))

    def open(self, text: str, *, purpose: str) -> bytes | None:
        """What :meth:`seal` sealed, or ``None`` for anything else (altered, another key,
        another purpose, not sealed at all)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode())
        except (binascii.Error, ValueError, InvalidTag):
            return None

    def token(self, *parts: str) -> str:
        """An HMAC of ``parts``: only a holder of the key can make it for given parts."""
        message = b"\0".join(part.encode() for part in parts)
        return _b64(hmac.new(self._mac_key, message, hashlib.sha256).digest())

    def check(self, sent: str, *parts: str) -> bool:
        """Whether ``sent`` is :meth:`token` of ``parts`` (in constant time)."""
        return hmac.compare_digest(sent.encode(), self.token(*parts).encode())
