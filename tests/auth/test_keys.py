"""The server's key pair: where it comes from, and that only our RS256 tokens pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from pathlib import Path

import pytest

from micro import errors
from micro.auth.base import Account, audience
from micro.auth.keys import KEY_FILE, PRIVATE_KEY_VAR, PUBLIC_KEY_VAR, KeyPair
from micro.settings import load

ALICE = Account(id="alice", issuer="team", scopes=["dev"], name="Alice", type="user")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], claims: dict[str, object], signature: bytes = b"") -> str:
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


def claims_of(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def refused(keys: KeyPair, token: str) -> str:
    with pytest.raises(errors.Unauthorized) as caught:
        keys.verify(token)
    detail = caught.value.detail
    assert len(token) < 5 or token not in detail
    return detail


def test_sign_and_verify_round_trip(keys: KeyPair) -> None:
    token = keys.sign(ALICE, expiry=60)
    claims = keys.verify(token)
    assert claims["sub"] == "alice"
    assert claims["iss"] == "team"
    assert claims["exp"] - claims["iat"] == 60
    assert (claims["type"], claims["scopes"], claims["name"]) == ("user", ["dev"], "Alice")
    assert keys.inspect(token) == ALICE


async def test_verify_token_gives_the_door_the_account_expiry_and_epoch(keys: KeyPair) -> None:
    token = keys.sign(ALICE, expiry=60, epoch="e1")
    verified = await keys.verify_token(token)
    assert verified.account == ALICE
    assert verified.expires == claims_of(token)["exp"]
    assert verified.epoch == "e1"


async def test_a_token_for_one_service_opens_no_other_door(keys: KeyPair) -> None:
    bound = keys.sign(ALICE, expiry=60, audience=audience("team", "greeter"))
    assert (await keys.verify_token(bound, audience=audience("team", "greeter"))).account == ALICE
    with pytest.raises(errors.Unauthorized, match="not for the platform"):
        await keys.verify_token(bound)
    with pytest.raises(errors.Unauthorized, match="not for this service"):
        await keys.verify_token(bound, audience=audience("team", "billing"))
    platform = keys.sign(ALICE, expiry=60)
    with pytest.raises(errors.Unauthorized, match="not for this service"):
        await keys.verify_token(platform, audience=audience("team", "greeter"))


def test_a_tampered_token_fails(keys: KeyPair) -> None:
    token = keys.sign(ALICE, expiry=60)
    head, body, sig = token.split(".")
    claims = claims_of(token)
    claims["scopes"] = ["admin"]
    forged_body = b64url(json.dumps(claims).encode())
    assert refused(keys, f"{head}.{forged_body}.{sig}") == "invalid token: bad signature"
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert "invalid token" in refused(keys, f"{head}.{body}.{flipped}")


def test_alg_none_fails(keys: KeyPair) -> None:
    claims = claims_of(keys.sign(ALICE, expiry=60))
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "typ": "JWT"}, claims)
        assert refused(keys, token) == "invalid token: algorithm not allowed"


def test_hs256_signed_with_the_public_key_fails(keys: KeyPair) -> None:
    claims = claims_of(keys.sign(ALICE, expiry=60))
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    mac = hmac.new(keys.public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256)
    token = f"{head}.{body}.{b64url(mac.digest())}"
    assert refused(keys, token) == "invalid token: algorithm not allowed"


def test_an_expired_token_fails(keys: KeyPair) -> None:
    token = keys.sign(ALICE, expiry=60, now=1_000_000)
    assert refused(keys, token) == "token expired"
    assert keys.verify(token, now=1_000_059)["sub"] == "alice"
    with pytest.raises(errors.Unauthorized):
        keys.verify(token, now=1_000_060)


def test_a_token_from_the_future_fails(keys: KeyPair) -> None:
    token = keys.sign(ALICE, expiry=600, now=2_000_000)
    with pytest.raises(errors.Unauthorized) as caught:
        keys.verify(token, now=2_000_000 - 300)
    assert caught.value.detail == "invalid token: issued in the future"
    assert keys.verify(token, now=2_000_000 - 30)["sub"] == "alice"  # clock drift


def test_another_servers_token_fails(keys: KeyPair, other_keys: KeyPair) -> None:
    token = other_keys.sign(ALICE, expiry=60)
    assert refused(keys, token) == "invalid token: bad signature"


def test_garbage_fails_without_details(keys: KeyPair) -> None:
    for junk in ("", "abc", "a.b", "a.b.c", "....", "e30.e30.e30"):
        detail = refused(keys, junk)
        assert detail.startswith("invalid token")


def test_claims_must_name_an_account(keys: KeyPair) -> None:
    # Validly signed by us, but without sub: still refused.
    import jwt

    private = keys._private
    assert private is not None
    token = jwt.encode({"iss": "team", "exp": 4_000_000_000}, private, algorithm="RS256")
    assert refused(keys, token) == "invalid token: no sub claim"
    token = jwt.encode({"iss": "team", "sub": "a"}, private, algorithm="RS256")
    assert refused(keys, token) == "invalid token: no exp claim"


def test_the_key_file_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = load({"MICRO_HOME": str(tmp_path / "home")})
    first = KeyPair.from_settings(settings, environ={})
    path = settings.home / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert first.can_sign
    again = KeyPair.from_settings(settings, environ={})
    assert again.public_pem == first.public_pem
    assert again.inspect(first.sign(ALICE, expiry=60)) == ALICE
    assert [p.name for p in path.parent.iterdir()] == ["auth_key.pem"]  # no temp left


def test_keys_from_the_environment(tmp_path: Path, other_keys: KeyPair) -> None:
    settings = load({"MICRO_HOME": str(tmp_path)})
    private = other_keys._private
    assert private is not None
    from cryptography.hazmat.primitives import serialization

    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    env = {PRIVATE_KEY_VAR: base64.b64encode(pem).decode()}
    from_env = KeyPair.from_settings(settings, environ=env)
    assert from_env.public_pem == other_keys.public_pem
    assert not (tmp_path / KEY_FILE).exists()
    wrapped = base64.encodebytes(pem).decode()  # what `base64 key.pem` prints
    assert "\n" in wrapped.strip()
    assert KeyPair.from_settings(settings, environ={PRIVATE_KEY_VAR: wrapped}).can_sign
    raw = KeyPair.from_settings(settings, environ={PRIVATE_KEY_VAR: pem.decode()})
    assert raw.public_pem == other_keys.public_pem
    both = {**env, PUBLIC_KEY_VAR: base64.b64encode(other_keys.public_pem.encode()).decode()}
    assert KeyPair.from_settings(settings, environ=both).can_sign
    public_only = {PUBLIC_KEY_VAR: other_keys.public_pem}
    verifier = KeyPair.from_settings(settings, environ=public_only)
    assert not verifier.can_sign
    assert verifier.inspect(other_keys.sign(ALICE, expiry=60)) == ALICE
    with pytest.raises(errors.InternalServerError):
        verifier.sign(ALICE, expiry=60)


def test_bad_keys_in_the_environment_are_named(tmp_path: Path, keys: KeyPair) -> None:
    settings = load({"MICRO_HOME": str(tmp_path)})
    with pytest.raises(ValueError, match=PRIVATE_KEY_VAR):
        KeyPair.from_settings(settings, environ={PRIVATE_KEY_VAR: "not a key!"})
    with pytest.raises(ValueError, match=PUBLIC_KEY_VAR):
        KeyPair.from_settings(settings, environ={PUBLIC_KEY_VAR: base64.b64encode(b"x").decode()})
    private = keys._private
    assert private is not None
    from cryptography.hazmat.primitives import serialization

    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    other = KeyPair.generate().public_pem
    with pytest.raises(ValueError, match="does not belong"):
        KeyPair.from_settings(settings, environ={PRIVATE_KEY_VAR: pem, PUBLIC_KEY_VAR: other})


def test_a_corrupt_key_file_is_named(tmp_path: Path) -> None:
    settings = load({"MICRO_HOME": str(tmp_path)})
    path = settings.home / KEY_FILE
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    with pytest.raises(ValueError, match=r"auth_key\.pem"):
        KeyPair.from_settings(settings, environ={})
