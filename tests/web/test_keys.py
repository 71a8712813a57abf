"""The dashboard's keys (micro.web.keys): where they come from, and what they refuse."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from micro.auth.keys import KEY_FILE as AUTH_KEY_FILE
from micro.auth.keys import PRIVATE_KEY_VAR, KeyPair
from micro.settings import load
from micro.web.keys import KEY_FILE, WebKeys


def _keys(home: Path, **env: str) -> WebKeys:
    environ = {"MICRO_HOME": str(home), **env}
    return WebKeys.from_settings(load(environ), environ)


def _agree(a: WebKeys, b: WebKeys) -> bool:
    return b.open(a.seal(b"x", purpose="p"), purpose="p") == b"x" and b.check(a.token("t"), "t")


def test_a_sealed_value_opens_only_unaltered_and_for_its_purpose() -> None:
    keys = WebKeys.generate()
    sealed = keys.seal(b"tokens", purpose="session")
    assert keys.open(sealed, purpose="session") == b"tokens"
    assert keys.open(sealed, purpose="other") is None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert keys.open(flipped, purpose="session") is None
    for junk in ("", "abc", "!!!", "a" * 40):
        assert keys.open(junk, purpose="session") is None
    assert WebKeys.generate().open(sealed, purpose="session") is None


def test_tokens_are_bound_to_their_parts() -> None:
    keys = WebKeys.generate()
    token = keys.token("csrf", "refresh-1")
    assert keys.check(token, "csrf", "refresh-1")
    assert not keys.check(token, "csrf", "refresh-2")
    assert not keys.check(token, "login", "refresh-1")
    assert not WebKeys.generate().check(token, "csrf", "refresh-1")


def test_replicas_sharing_the_auth_key_agree(tmp_path: Path) -> None:
    pem = base64.b64encode(KeyPair.generate().private_pem()).decode()
    one = _keys(tmp_path / "a", **{PRIVATE_KEY_VAR: pem})
    two = _keys(tmp_path / "b", **{PRIVATE_KEY_VAR: pem})
    assert _agree(one, two)
    other = _keys(tmp_path / "c", **{PRIVATE_KEY_VAR: base64.b64encode(KeyPair.generate().private_pem()).decode()})  # fmt: skip
    assert not _agree(one, other)
    assert not (tmp_path / "a" / KEY_FILE).exists()


def test_the_servers_key_file_is_used_never_made(tmp_path: Path) -> None:
    server = tmp_path / "server-home"
    KeyPair.from_settings(load({"MICRO_HOME": str(server)}), {})  # the server makes it
    assert _agree(_keys(server), _keys(server))
    alone = tmp_path / "web-home"
    keys = _keys(alone)  # micro web alone: a key of its own, never an auth key
    assert not (alone / AUTH_KEY_FILE).exists()
    assert stat.S_IMODE((alone / KEY_FILE).stat().st_mode) == 0o600
    assert _agree(keys, _keys(alone))
    assert not _agree(keys, _keys(server))


def test_a_web_secret_is_taken_first_and_must_be_long(tmp_path: Path) -> None:
    secret = "s" * 32
    assert _agree(
        _keys(tmp_path / "a", MICRO_WEB_SECRET=secret),
        _keys(tmp_path / "b", MICRO_WEB_SECRET=secret),
    )
    with pytest.raises(ValueError, match="MICRO_WEB_SECRET must be at least 32 characters"):
        _keys(tmp_path, MICRO_WEB_SECRET="short")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / KEY_FILE).write_text("not base64!\n")
    with pytest.raises(ValueError, match="is not a key"):
        _keys(tmp_path / "bad")
