"""The server's token key pair: access tokens are RS256 JWTs signed with its private key.

The pair is RSA 2048. It comes from ``MICRO_AUTH_PRIVATE_KEY`` / ``MICRO_AUTH_PUBLIC_KEY``
(base64 of the PEM, or the PEM itself, as Micro takes them), else from
``MICRO_HOME/server/auth_key.pem`` (mode 0600), generated on first use. A door that only
verifies needs the public key alone (:meth:`KeyPair.from_public_pem`).

:meth:`KeyPair.verify` accepts RS256 signed by this pair and nothing else: ``alg: none``,
HS256 "signed" with the public key, a tampered or expired token, or one signed by another
server's key all fail with :class:`~micro.errors.Unauthorized`, whose detail says why in a
few words and never repeats the token.

Two kinds of token, told apart by the ``aud`` claim. A *platform* token (no ``aud``) is what
logging in gives: the doors of the platform (the proxy, the gateway, the core services)
take it. A *service* token (``aud`` = :func:`audience` of one service) is what a call to a
user service carries instead: only that service's door takes it, so a service that keeps
what it was called with can replay it nowhere but at itself. Both carry the account's
``epoch``, which changes when its secret does, so a door can refuse the tokens of an
account whose secret changed or that was deleted (:mod:`micro.auth.door`).
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from micro import errors
from micro.auth.base import Account, Verified, audience
from micro.settings import Settings, load

__all__ = [
    "ALGORITHM",
    "KEY_FILE",
    "PRIVATE_KEY_VAR",
    "PUBLIC_KEY_VAR",
    "KeyPair",
    "Verified",
    "account_from_claims",
    "audience",
]  # Verified and audience live in micro.auth.base (cheap to import); re-exported here

ALGORITHM: Final = "RS256"
KEY_FILE: Final = "server/auth_key.pem"
"""The generated private key's path under ``MICRO_HOME``."""
PRIVATE_KEY_VAR: Final = "MICRO_AUTH_PRIVATE_KEY"
PUBLIC_KEY_VAR: Final = "MICRO_AUTH_PUBLIC_KEY"
IAT_LEEWAY: Final = 60.0
"""Seconds a token's ``iat`` may lie in the future (clocks of other hosts drift)."""

_KEY_BITS = 2048
_ID = "auth"


def _pem(text: str, where: str) -> bytes:
    """A PEM given raw or base64-encoded."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    try:
        # `base64 key.pem` wraps its output: the line breaks are not part of the key.
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error:
        raise ValueError(f"{where} must be a PEM key or its base64 encoding") from None


def _load_private(data: bytes, where: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{where} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{where} is not an RSA private key")
    return key


def _load_public(data: bytes, where: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ValueError(f"{where} is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{where} is not an RSA public key")
    return key


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_new_key(path: Path) -> rsa.RSAPrivateKey:
    """Generate a key into ``path`` (0600), or load the one another process wrote first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(_private_pem(key))
            file.flush()
            os.fsync(file.fileno())
        # A hard link appears whole or not at all and never replaces: the first writer wins.
        os.link(tmp, path)
    except FileExistsError:
        return _load_private(path.read_bytes(), str(path))
    finally:
        tmp.unlink(missing_ok=True)
    return key


def account_from_claims(claims: Mapping[str, Any]) -> Account:
    """The account an access token's verified claims describe."""
    scopes = claims.get("scopes") or []
    metadata = claims.get("metadata") or {}
    return Account(
        id=str(claims["sub"]),
        type=str(claims.get("type") or "user"),
        issuer=str(claims["iss"]),
        scopes=[str(s) for s in scopes] if isinstance(scopes, list) else [],
        metadata={str(k): str(v) for k, v in metadata.items()}
        if isinstance(metadata, dict)
        else {},
        name=str(claims.get("name") or claims["sub"]),
    )


class KeyPair:
    """Signs and verifies access tokens. Without a private key it only verifies."""

    def __init__(
        self, public_key: rsa.RSAPublicKey, private_key: rsa.RSAPrivateKey | None = None
    ) -> None:
        if private_key is not None and private_key.public_key().public_numbers() != (
            public_key.public_numbers()
        ):
            raise ValueError("the auth public key does not belong to the private key")
        self._public = public_key
        self._private = private_key
        self.public_pem: str = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        """The public key as PEM text, what :meth:`Auth.public_key` hands out."""

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh pair kept in memory only (tests, throwaway servers)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)
        return cls(key.public_key(), key)

    @classmethod
    def from_public_pem(cls, pem: str | bytes) -> KeyPair:
        """A verify-only pair from a PEM public key (raw or base64)."""
        text = pem.decode() if isinstance(pem, bytes) else pem
        return cls(_load_public(_pem(text, "the auth public key"), "the auth public key"))

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, environ: Mapping[str, str] | None = None
    ) -> KeyPair:
        """The server's pair: from ``MICRO_AUTH_PRIVATE_KEY``/``MICRO_AUTH_PUBLIC_KEY``, else
        ``MICRO_HOME/server/auth_key.pem``, generated (0600) when missing.

        Only a public key given means verify-only. Raises ``ValueError`` naming the variable
        or file when a key there is malformed or the two keys do not match.
        """
        env = os.environ if environ is None else environ
        settings = settings or load(env)
        private_text = env.get(PRIVATE_KEY_VAR, "").strip()
        public_text = env.get(PUBLIC_KEY_VAR, "").strip()
        public = (
            _load_public(_pem(public_text, PUBLIC_KEY_VAR), PUBLIC_KEY_VAR) if public_text else None
        )
        if private_text:
            private = _load_private(_pem(private_text, PRIVATE_KEY_VAR), PRIVATE_KEY_VAR)
            return cls(public or private.public_key(), private)
        if public is not None:
            return cls(public)
        path = settings.home / KEY_FILE
        try:
            private = _load_private(path.read_bytes(), str(path))
        except FileNotFoundError:
            private = _write_new_key(path)
        return cls(private.public_key(), private)

    def private_pem(self) -> bytes:
        """The private key as PEM (PKCS8), to hand to other replicas; it must sign."""
        if self._private is None:
            raise ValueError("this key pair has no private key")
        return _private_pem(self._private)

    @property
    def can_sign(self) -> bool:
        """True when this pair holds the private key."""
        return self._private is not None

    def sign(
        self,
        account: Account,
        *,
        expiry: float,
        now: float | None = None,
        epoch: str = "",
        audience: str = "",
    ) -> str:
        """An access token for ``account`` living ``expiry`` seconds from ``now``: a platform
        token, or with ``audience`` a token only that service takes."""
        if self._private is None:
            raise errors.InternalServerError(_ID, "this auth key pair cannot sign tokens")
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sub": account.id,
            "iss": account.issuer,
            "iat": issued,
            "exp": issued + math.ceil(expiry),
            "type": account.type,
            "scopes": list(account.scopes),
            "name": account.name or account.id,
        }
        if account.metadata:
            claims["metadata"] = dict(account.metadata)
        if epoch:
            claims["epoch"] = epoch
        if audience:
            claims["aud"] = audience
        return jwt.encode(claims, self._private, algorithm=ALGORITHM)

    def verify(self, token: str, *, now: float | None = None, audience: str = "") -> dict[str, Any]:
        """The claims of a valid access token; Unauthorized saying why otherwise. Without
        ``audience`` only a platform token is valid; with it, only a token for it."""
        if not isinstance(token, str) or token.count(".") != 2:
            raise errors.Unauthorized(_ID, "invalid token: not a JWT")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=audience or None,
                # exp and iat are checked below against our clock (tests move it).
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "strict_aud": bool(audience),  # one audience, matched exactly
                },
            )
        except jwt.InvalidAlgorithmError:
            raise errors.Unauthorized(_ID, "invalid token: algorithm not allowed") from None
        except jwt.InvalidSignatureError:
            raise errors.Unauthorized(_ID, "invalid token: bad signature") from None
        except (jwt.InvalidAudienceError, jwt.MissingRequiredClaimError):
            raise errors.Unauthorized(_ID, _wrong_audience(audience)) from None
        except jwt.InvalidTokenError:
            raise errors.Unauthorized(_ID, "invalid token: malformed") from None
        current = time.time() if now is None else now
        for claim in ("sub", "iss"):
            if not isinstance(claims.get(claim), str) or not claims[claim]:
                raise errors.Unauthorized(_ID, f"invalid token: no {claim} claim")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise errors.Unauthorized(_ID, "invalid token: no exp claim")
        if current >= exp:
            raise errors.Unauthorized(_ID, "token expired")
        if isinstance(iat, int | float) and iat > current + IAT_LEEWAY:
            raise errors.Unauthorized(_ID, "invalid token: issued in the future")
        return claims

    def inspect(self, token: str, *, now: float | None = None) -> Account:
        """The account of a valid access token (:meth:`verify`, then the claims read)."""
        return account_from_claims(self.verify(token, now=now))

    def verified(self, token: str, *, now: float | None = None, audience: str = "") -> Verified:
        """:meth:`verify`, read: the account, expiry and epoch of a valid token."""
        claims = self.verify(token, now=now, audience=audience)
        return Verified(account_from_claims(claims), float(claims["exp"]), _epoch(claims))

    async def verify_token(self, token: str, *, audience: str = "") -> Verified:
        """:meth:`verified`, as the :data:`micro.auth.door.TokenVerifier` a door verifies
        tokens with, locally."""
        return self.verified(token, audience=audience)


def _epoch(claims: Mapping[str, Any]) -> str:
    epoch = claims.get("epoch")
    return epoch if isinstance(epoch, str) else ""


def _wrong_audience(wanted: str) -> str:
    if not wanted:
        return "invalid token: it is for one service, not for the platform"
    return f"invalid token: not for this service ({wanted.removeprefix('service:')})"
