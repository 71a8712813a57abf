"""A runtime's sources as it checks and keeps them: uploaded folders (on the store, for
every replica, and on this replica's disk) and git URLs.

An upload for ``micro update`` is kept under a staged version
(:func:`~micro.runtime.rollout.staged_version`) until its rolling update succeeded, then
promoted to the service's own; the service's source id may name a folder of the upload
(``source://hello:latest//services/hello``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from micro import errors
from micro.runtime import archives
from micro.runtime.base import Service
from micro.runtime.rollout import STAGED, staged_version
from micro.runtime.source import SourceError, parse_git, split_upload
from micro.runtime.supervisor import Layout
from micro.store.base import Store

__all__ = ["Uploads", "write_atomic"]

_WHERE = "runtime.Runtime"


class Uploads:
    """The sources of one runtime: ``store`` keeps uploads for every replica, ``layout``
    says where this replica's copies go."""

    def __init__(self, store: Store, layout: Layout) -> None:
        self._store = store
        self._layout = layout

    async def save(self, namespace: str, name: str, version: str, data: bytes) -> None:
        """Keep an upload, on the store and on this replica's disk."""
        await archives.save(self._store, namespace, name, version, data)
        await asyncio.to_thread(write_atomic, self._layout.archive(namespace, name, version), data)

    async def fetch(self, namespace: str, svc: Service) -> None:
        """Copy ``svc``'s upload to this replica's disk when it has none (it was
        uploaded through another replica)."""
        path = self._layout.archive(namespace, svc.name, svc.version)
        if svc.source.startswith("source://") and not path.exists():
            data = await archives.load(self._store, namespace, svc.name, svc.version)
            if data is not None:
                await asyncio.to_thread(write_atomic, path, data)

    async def check(self, service: Service, namespace: str) -> None:
        """BadRequest unless ``service.source`` is its own upload (or its update's
        staged one), present, or a git URL."""
        source = service.source
        if source.startswith("source://"):
            try:
                base, _ = split_upload(source)
            except SourceError as exc:
                raise errors.BadRequest(_WHERE, str(exc)) from None
            version = service.version
            if base == f"source://{service.name}:{staged_version(version)}":
                version = staged_version(version)
            elif base != f"source://{service.name}:{version}":
                raise errors.BadRequest(_WHERE, f"source {source!r} is not this service's upload")
            if not await archives.exists(self._store, namespace, service.name, version):
                raise errors.BadRequest(_WHERE, f"no uploaded source for {source}")
            return
        try:
            git = parse_git(source)
        except SourceError as exc:
            raise errors.BadRequest(_WHERE, str(exc)) from None
        if git is None:
            raise errors.BadRequest(
                _WHERE, f"unknown source {source!r}: upload a folder, or give a git URL"
            )

    async def promote(self, namespace: str, svc: Service) -> str:
        """A staged upload (``micro update`` of a folder) becomes the service's upload;
        the source id to keep."""
        if not svc.source.startswith("source://"):
            return svc.source
        base, folder = split_upload(svc.source)
        if base.endswith(STAGED):
            staged = staged_version(svc.version)
            data = await archives.load(self._store, namespace, svc.name, staged)
            if data is not None:
                await self.save(namespace, svc.name, svc.version, data)
            await self.drop_staged(namespace, svc)
        canonical = f"source://{svc.name}:{svc.version}"
        return canonical + (f"//{folder}" if folder else "")

    async def drop_staged(self, namespace: str, svc: Service) -> None:
        """Forget an update's staged upload (the update failed, or was promoted)."""
        staged = staged_version(svc.version)
        await archives.delete(self._store, namespace, svc.name, staged)
        with contextlib.suppress(FileNotFoundError):
            self._layout.archive(namespace, svc.name, staged).unlink()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (its folders made) through a temporary file renamed
    into place, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
