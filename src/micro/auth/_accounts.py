"""Accounts, refresh tokens and revocations as records of one store table (layout:
:mod:`micro.auth.store`)."""

from __future__ import annotations

import hashlib

import msgspec

from micro import errors
from micro.auth.base import Account
from micro.store.base import Record, Store

__all__ = ["AccountBook", "Stored"]


class Stored(msgspec.Struct, omit_defaults=True):
    """An account as stored: ``hash`` is the argon2 hash of its secret; ``epoch`` is
    random, made anew when the account is created or its secret changes, and binds refresh
    tokens to it (so one bought during a change of secret, or of an account since deleted
    and made again, is dead)."""

    id: str
    type: str
    issuer: str
    hash: str
    epoch: str = ""
    scopes: list[str] = []
    metadata: dict[str, str] = {}
    name: str = ""

    def account(self) -> Account:
        """The account as callers see it (no secret, no hash)."""
        return Account(
            id=self.id,
            type=self.type,
            issuer=self.issuer,
            scopes=list(self.scopes),
            metadata=dict(self.metadata),
            name=self.name or self.id,
        )


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Stored).decode


def digest(token: str) -> str:
    """What a refresh token is stored as: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class AccountBook:
    """Reads and writes account and refresh token records."""

    def __init__(self, store: Store, database: str, table: str) -> None:
        self._store = store
        self._database = database
        self._table = table

    async def _get(self, key: str) -> bytes | None:
        try:
            [record] = await self._store.read(key, database=self._database, table=self._table)
        except errors.NotFound:
            return None
        return record.value

    async def _put(self, key: str, value: bytes, expiry: float = 0) -> None:
        record = Record(key, value, expiry=expiry)
        await self._store.write(record, database=self._database, table=self._table)

    async def _drop(self, key: str) -> None:
        await self._store.delete(key, database=self._database, table=self._table)

    # -- accounts -------------------------------------------------------------------------

    async def get(self, id: str, namespace: str) -> Stored | None:
        """The account with this id."""
        data = await self._get(f"account/{namespace}/{id}")
        return None if data is None else _decode(data)

    async def find(self, id_or_name: str, namespace: str) -> Stored | None:
        """The account with this id, else with this name."""
        stored = await self.get(id_or_name, namespace)
        if stored is None:
            id = await self._get(f"accountByName/{namespace}/{id_or_name}")
            stored = None if id is None else await self.get(id.decode(), namespace)
        return stored

    async def all(self, namespace: str) -> list[Stored]:
        """Every account of the namespace, by id."""
        records = await self._store.read(
            f"account/{namespace}/", database=self._database, table=self._table, prefix=True
        )
        return [_decode(r.value) for r in records]

    async def put(self, stored: Stored) -> None:
        """Write the account and its name's index."""
        ns = stored.issuer
        await self._put(f"account/{ns}/{stored.id}", _encode(stored))
        await self._put(f"accountByName/{ns}/{stored.name or stored.id}", stored.id.encode())

    async def delete(self, stored: Stored) -> None:
        """Remove the account, its name's index and its refresh tokens."""
        ns = stored.issuer
        await self.drop_refresh_tokens(stored.id, ns)
        await self._drop(f"accountByName/{ns}/{stored.name or stored.id}")
        await self._drop(f"account/{ns}/{stored.id}")

    # -- revocations ----------------------------------------------------------------------

    async def revoke(self, namespace: str, id: str, epoch: str, expiry: float) -> None:
        """Say that the tokens of an account carrying another epoch than ``epoch`` (``-``:
        any) are revoked, for ``expiry`` seconds: as long as such a token could live."""
        await self._put(f"revoked/{namespace}/{id}", epoch.encode(), expiry)

    async def revoked(self, namespace: str) -> dict[str, str]:
        """The namespace's revocations: account id -> the epoch its tokens must carry."""
        prefix = f"revoked/{namespace}/"
        records = await self._store.read(
            prefix, database=self._database, table=self._table, prefix=True
        )
        return {r.key[len(prefix) :]: r.value.decode() for r in records}

    # -- refresh tokens -------------------------------------------------------------------

    async def keep_refresh(self, token: str, stored: Stored, expiry: float) -> None:
        """Store (or renew) a refresh token of ``stored`` for ``expiry`` seconds."""
        hashed, ns = digest(token), stored.issuer
        await self._put(f"refreshByAccount/{ns}/{stored.id}/{hashed}", b"", expiry)
        owner = f"{stored.id}\n{stored.epoch}"  # ids hold no control characters
        await self._put(f"refresh/{ns}/{hashed}", owner.encode(), expiry)

    async def refresh_owner(self, token: str, namespace: str) -> Stored | None:
        """The account a refresh token belongs to, if both are still there."""
        owner = await self._get(f"refresh/{namespace}/{digest(token)}")
        if owner is None:
            return None
        id, _, epoch = owner.decode().partition("\n")
        stored = await self.get(id, namespace)
        return stored if stored is not None and stored.epoch == epoch else None

    async def drop_refresh(self, token: str, namespace: str) -> None:
        """Forget one refresh token (unknown is fine)."""
        hashed = digest(token)
        owner = await self._get(f"refresh/{namespace}/{hashed}")
        await self._drop(f"refresh/{namespace}/{hashed}")
        if owner is not None:
            id = owner.decode().partition("\n")[0]
            await self._drop(f"refreshByAccount/{namespace}/{id}/{hashed}")

    async def drop_refresh_tokens(self, id: str, namespace: str) -> None:
        """Forget every refresh token of an account."""
        prefix = f"refreshByAccount/{namespace}/{id}/"
        keys = await self._store.list(database=self._database, table=self._table, prefix=prefix)
        for key in keys:
            await self._drop(f"refresh/{namespace}/{key[len(prefix) :]}")
            await self._drop(key)
