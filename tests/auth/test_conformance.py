"""The auth conformance suite over every implementation: StoreAuth on the memory and
SQLite stores, and the RPC client talking to the auth service over a real socket, behind
a door, with an admin's token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from micro.auth.client import RPCAuth
from micro.auth.keys import KeyPair
from micro.auth.store import StoreAuth
from micro.auth.testing import AuthSuite, serving_auth
from micro.rpc import Client
from micro.store.sqlite import SQLiteStore


class TestStoreAuth(AuthSuite):
    @pytest.fixture
    def auth(self, store_auth: StoreAuth) -> StoreAuth:
        return store_auth


class TestStoreAuthOnSQLite(AuthSuite):
    @pytest.fixture
    async def auth(
        self, tmp_path: Path, keys: KeyPair, hasher: PasswordHasher
    ) -> AsyncIterator[StoreAuth]:
        store = SQLiteStore(tmp_path / "store")
        auth = StoreAuth(store, keys, hasher=hasher)
        yield auth
        await auth.close()
        await store.close()


class TestRPCAuth(AuthSuite):
    @pytest.fixture
    async def auth(self, store_auth: StoreAuth, keys: KeyPair) -> AsyncIterator[RPCAuth]:
        await store_auth.bootstrap("admin-pw")
        token = await store_auth.token(id="admin", secret="admin-pw", expiry=3600)
        async with serving_auth(store_auth, keys) as server:
            client = Client(
                proxy=str(server.address),
                metadata={"authorization": f"Bearer {token.access_token}"},
            )
            yield RPCAuth(client)
            await client.close()
