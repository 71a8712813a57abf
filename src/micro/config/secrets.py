"""Config secrets: AES-256-GCM under the platform's key, as Micro stores them.

A secret leaf's JSON text is sealed with a fresh random 96-bit nonce; the stored string
is ``base64(hex(nonce || ciphertext || tag))``, Micro's encoding. The key is 32 bytes,
given base64-encoded in ``MICRO_CONFIG_SECRET_KEY``, or else read from (and on first use
generated into) ``MICRO_HOME/config_secret_key``, a file of mode 0600.

Opening with another key fails the GCM tag check, so a wrong key is always a clear
:class:`~micro.config.base.SecretError`, never garbage.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from micro.config.base import SecretError
from micro.settings import Settings, load

__all__ = ["KEY_FILE", "SecretBox", "load_key", "new_key"]

KEY_FILE = "config_secret_key"
"""The generated key's file name under ``MICRO_HOME``."""

_KEY_BYTES = 32
_NONCE_BYTES = 12


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != _KEY_BYTES:
        raise ValueError(f"{where} must be the base64 encoding of {_KEY_BYTES} bytes")
    return key


def load_key(settings: Settings | None = None) -> bytes:
    """The config secret key: ``MICRO_CONFIG_SECRET_KEY``, else the key file under
    ``MICRO_HOME``, created (0600) with a random key when missing.

    Raises ``ValueError`` naming the variable or file when the key there is malformed.
    """
    settings = settings or load()
    if settings.config_secret_key:
        return _decode_key(settings.config_secret_key, "MICRO_CONFIG_SECRET_KEY")
    path = settings.home / KEY_FILE
    try:
        return _decode_key(path.read_text(), str(path))
    except FileNotFoundError:
        pass
    return _create_key(path)


def new_key() -> bytes:
    """A fresh random secret key."""
    return os.urandom(_KEY_BYTES)


def _create_key(path: Path) -> bytes:
    key = new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process made it first: use theirs, so both agree.
        return _decode_key(path.read_text(), str(path))
    with os.fdopen(fd, "w") as file:
        file.write(base64.b64encode(key).decode() + "\n")
    return key


class SecretBox:
    """Seals and opens secret leaves with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a config secret key is {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SecretBox:
        """A box with the key :func:`load_key` finds (or makes)."""
        return cls(load_key(settings))

    def seal(self, plaintext: bytes) -> str:
        """Encrypt ``plaintext`` under a fresh nonce; Micro's stored form."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, None)
        return base64.b64encode(sealed.hex().encode()).decode()

    def open(self, stored: str, path: str = "") -> bytes:
        """Decrypt what :meth:`seal` made; SecretError if it is not ours or not intact."""
        where = f" at {path!r}" if path else ""
        try:
            sealed = bytes.fromhex(base64.b64decode(stored, validate=True).decode("ascii"))
        except (binascii.Error, ValueError):
            raise SecretError(f"the secret{where} is corrupt: not a sealed value") from None
        if len(sealed) < _NONCE_BYTES + 16:
            raise SecretError(f"the secret{where} is corrupt: too short")
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], None)
        except InvalidTag:
            raise SecretError(
                f"cannot decrypt the secret{where}: the config secret key "
                "(MICRO_CONFIG_SECRET_KEY) is not the key it was encrypted with"
            ) from None
