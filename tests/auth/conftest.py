"""Fixtures for the auth tests: key pairs made once per run, a cheap argon2 hasher (the
hash parameters are argon2-cffi's business; the tests check how hashes are used), and a
StoreAuth on a memory store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from micro.auth.keys import KeyPair
from micro.auth.store import StoreAuth
from micro.store.memory import MemoryStore


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture(scope="session")
def other_keys() -> KeyPair:
    """Another server's pair."""
    return KeyPair.generate()


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher.from_parameters(CHEAPEST)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def store_auth(
    store: MemoryStore, keys: KeyPair, hasher: PasswordHasher
) -> AsyncIterator[StoreAuth]:
    auth = StoreAuth(store, keys, hasher=hasher)
    yield auth
    await auth.close()
