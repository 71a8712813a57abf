"""Uploaded sources kept on the store, so whichever replica runs a service can fetch it.

An archive (at most 100 MiB) is cut into chunks under the store's value limit, keys
``source:<ns>:<name>:<version>:<digest>:<n>``, and described by a manifest,
``archive:<ns>:<name>:<version>``, written last: a reader that finds the manifest finds
every chunk it names, and checks the whole against the manifest's SHA-256. An upload
replacing an older one writes new chunks (a new digest) before it moves the manifest,
then drops the old chunks. Names and versions hold no ``:``, so no prefix spans two.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from micro import errors
from micro.store.base import Record, Store

__all__ = ["delete", "exists", "load", "save"]

DATABASE: Final = "micro"
TABLE: Final = "runtime"
CHUNK: Final = 1 << 20


class _Manifest(msgspec.Struct):
    digest: str
    chunks: int
    size: int


def _manifest_key(namespace: str, name: str, version: str) -> str:
    return f"archive:{namespace}:{name}:{version}"


def _chunks_prefix(namespace: str, name: str, version: str) -> str:
    return f"source:{namespace}:{name}:{version}:"


async def save(store: Store, namespace: str, name: str, version: str, data: bytes) -> None:
    """Keep ``data`` as the upload of ``name``/``version``, replacing an earlier one."""
    digest = hashlib.sha256(data).hexdigest()
    prefix = _chunks_prefix(namespace, name, version)
    count = max(1, -(-len(data) // CHUNK))
    for n in range(count):
        chunk = data[n * CHUNK : (n + 1) * CHUNK]
        record = Record(f"{prefix}{digest}:{n}", chunk)
        await store.write(record, database=DATABASE, table=TABLE)
    manifest = _Manifest(digest=digest, chunks=count, size=len(data))
    key = _manifest_key(namespace, name, version)
    await store.write(Record(key, msgspec.json.encode(manifest)), database=DATABASE, table=TABLE)
    await _drop_chunks(store, prefix, keep=f"{prefix}{digest}:")


async def exists(store: Store, namespace: str, name: str, version: str) -> bool:
    """Whether an upload of ``name``/``version`` is kept."""
    return await _manifest(store, namespace, name, version) is not None


async def load(store: Store, namespace: str, name: str, version: str) -> bytes | None:
    """The upload of ``name``/``version``, or None if there is none; an InternalServerError
    if what is kept is not intact."""
    manifest = await _manifest(store, namespace, name, version)
    if manifest is None:
        return None
    prefix = f"{_chunks_prefix(namespace, name, version)}{manifest.digest}:"
    parts = []
    for n in range(manifest.chunks):
        try:
            [record] = await store.read(f"{prefix}{n}", database=DATABASE, table=TABLE)
        except errors.NotFound:
            break
        parts.append(record.value)
    data = b"".join(parts)
    if len(data) != manifest.size or hashlib.sha256(data).hexdigest() != manifest.digest:
        raise errors.InternalServerError(
            "runtime", f"the uploaded source of {name} ({version}) is not intact; upload it again"
        )
    return data


async def delete(store: Store, namespace: str, name: str, version: str) -> None:
    """Forget the upload of ``name``/``version`` (nothing if there is none)."""
    await store.delete(_manifest_key(namespace, name, version), database=DATABASE, table=TABLE)
    await _drop_chunks(store, _chunks_prefix(namespace, name, version), keep=None)


async def _manifest(store: Store, namespace: str, name: str, version: str) -> _Manifest | None:
    key = _manifest_key(namespace, name, version)
    try:
        [record] = await store.read(key, database=DATABASE, table=TABLE)
    except errors.NotFound:
        return None
    return msgspec.json.decode(record.value, type=_Manifest)


async def _drop_chunks(store: Store, prefix: str, *, keep: str | None) -> None:
    for key in await store.list(database=DATABASE, table=TABLE, prefix=prefix):
        if keep is None or not key.startswith(keep):
            await store.delete(key, database=DATABASE, table=TABLE)
