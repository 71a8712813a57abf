"""Secrets: AES-256-GCM under the platform's key; a wrong key is a clear error, never
garbage, and nothing stored is touched by it."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from micro import errors
from micro.config import SECRET_MASK, SecretError
from micro.config.client import RPCConfig
from micro.config.handler import Config as ConfigHandler
from micro.config.secrets import KEY_FILE, SecretBox, load_key
from micro.config.store import StoreConfig
from micro.rpc import Client, Server, endpoints_of
from micro.settings import load
from micro.store.memory import MemoryStore


def test_seal_and_open_round_trip() -> None:
    box = SecretBox(os.urandom(32))
    sealed = box.seal(b'"hunter2"')
    assert b"hunter2" not in base64.b64decode(sealed)
    assert box.open(sealed) == b'"hunter2"'
    assert box.seal(b"x") != box.seal(b"x")  # a fresh nonce every time


def test_stored_form_is_micros_base64_of_hex() -> None:
    sealed = SecretBox(os.urandom(32)).seal(b"1")
    raw = bytes.fromhex(base64.b64decode(sealed).decode())
    assert len(raw) == 12 + 1 + 16  # nonce, ciphertext, tag


def test_wrong_key_is_a_clear_error() -> None:
    sealed = SecretBox(os.urandom(32)).seal(b'"x"')
    with pytest.raises(SecretError, match=r"MICRO_CONFIG_SECRET_KEY.*not the key") as info:
        SecretBox(os.urandom(32)).open(sealed, "db.password")
    assert info.value.code == 500
    assert "'db.password'" in info.value.detail


def test_tampered_or_malformed_secret_is_a_clear_error() -> None:
    box = SecretBox(os.urandom(32))
    raw = bytearray(bytes.fromhex(base64.b64decode(box.seal(b'"x"')).decode()))
    raw[-1] ^= 1
    with pytest.raises(SecretError):
        box.open(base64.b64encode(raw.hex().encode()).decode())
    with pytest.raises(SecretError, match="corrupt"):
        box.open("not base64!")
    with pytest.raises(SecretError, match="corrupt"):
        box.open(base64.b64encode(b"abcd").decode())


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(b"short")


def test_key_from_the_environment(tmp_path: Path) -> None:
    key = os.urandom(32)
    settings = load(
        {"MICRO_HOME": str(tmp_path), "MICRO_CONFIG_SECRET_KEY": base64.b64encode(key).decode()}
    )
    assert load_key(settings) == key
    assert not (tmp_path / KEY_FILE).exists()


@pytest.mark.parametrize("bad", ["not-base64!", base64.b64encode(b"16 bytes only...").decode()])
def test_malformed_key_in_the_environment_names_the_variable(tmp_path: Path, bad: str) -> None:
    settings = load({"MICRO_HOME": str(tmp_path), "MICRO_CONFIG_SECRET_KEY": bad})
    with pytest.raises(ValueError, match="MICRO_CONFIG_SECRET_KEY must be the base64"):
        load_key(settings)


def test_key_is_generated_once_under_micro_home_with_mode_0600(tmp_path: Path) -> None:
    settings = load({"MICRO_HOME": str(tmp_path)})
    key = load_key(settings)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == key
    assert load_key(settings) == key
    assert len(key) == 32


def test_malformed_key_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("garbage")
    with pytest.raises(ValueError, match=KEY_FILE):
        load_key(load({"MICRO_HOME": str(tmp_path)}))


# -- on the config ------------------------------------------------------------------------


async def test_secrets_are_stored_encrypted_in_micros_leaf_form() -> None:
    store = MemoryStore()
    config = StoreConfig(store, secrets=SecretBox(os.urandom(32)))
    await config.set("db", {"user": "app", "password": "hunter2"}, namespace="ns1")
    await config.set("db.password", "hunter2", secret=True, namespace="ns1")
    [record] = await store.read("ns1", database="micro", table="config")
    assert b"hunter2" not in record.value
    tree = msgspec.json.decode(record.value)
    assert tree["db"]["user"] == {"value": '"app"', "leaf": True}
    password = tree["db"]["password"]
    assert password["leaf"] is True
    assert password["secret"] is True
    assert isinstance(password["value"], str)


async def test_wrong_key_fails_reveals_only_and_loses_nothing() -> None:
    store = MemoryStore()
    right = StoreConfig(store, secrets=SecretBox(os.urandom(32)))
    wrong = StoreConfig(store, secrets=SecretBox(os.urandom(32)))
    await right.set("db.password", "hunter2", secret=True)
    await right.set("db.user", "app")
    [before] = await store.read("micro", database="micro", table="config")
    with pytest.raises(SecretError, match="not the key it was encrypted with"):
        await wrong.get("db.password", secret=True)
    with pytest.raises(SecretError):
        await wrong.get("", secret=True)
    assert (await wrong.get("db")).data == {"password": SECRET_MASK, "user": "app"}
    assert (await wrong.get("db.user", secret=True)).data == "app"
    [after] = await store.read("micro", database="micro", table="config")
    assert after.value == before.value
    await wrong.set("db.host", "h")
    assert (await right.get("db", secret=True)).data == {
        "password": "hunter2",
        "user": "app",
        "host": "h",
    }


async def test_no_key_means_no_secret_writes_and_nothing_written() -> None:
    config = StoreConfig(MemoryStore())
    await config.set("keep", 1)
    with pytest.raises(SecretError, match="secret key is not set"):
        await config.set("pw", "x", secret=True)
    assert (await config.get("")).data == {"keep": 1}


@pytest.fixture
async def two_keys() -> AsyncIterator[tuple[RPCConfig, StoreConfig]]:
    """An RPC client of a config service whose key is not the one its secrets used."""
    store = MemoryStore()
    right = StoreConfig(store, secrets=SecretBox(os.urandom(32)))
    await right.set("api.token", "s3cr3t", secret=True)
    wrong = StoreConfig(store, secrets=SecretBox(os.urandom(32)))
    server = Server()
    server.add("config", endpoints_of(ConfigHandler(wrong)))
    address = await server.start("127.0.0.1:0")
    client = Client(proxy=str(address))
    yield RPCConfig(client), right
    await client.close()
    await server.stop(grace=1)


async def test_wrong_key_over_rpc_is_a_500_naming_the_key(
    two_keys: tuple[RPCConfig, StoreConfig],
) -> None:
    config, _ = two_keys
    with pytest.raises(errors.InternalServerError) as info:
        await config.get("api.token", secret=True)
    assert SecretError.matches(info.value)
    assert "MICRO_CONFIG_SECRET_KEY" in info.value.detail
    assert (await config.get("api.token")).data == SECRET_MASK
    with pytest.raises(errors.InternalServerError):
        async with config.watch("api", secret=True) as watcher:
            await watcher.next()
