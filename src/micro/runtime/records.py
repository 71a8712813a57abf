"""What the local runtime keeps on the store, in table ``runtime`` of database ``micro``:
the services that should run (``service:<ns>:<name>:<version>``) and the status each
replica last published of those it runs (``status:<ns>:<name>:<version>``).

Environment variables are secrets (passwords, API keys): both kinds of record keep them
sealed with the config secret key, beside an empty ``service.env``, so reading the store
shows no value. A record written before they were sealed still reads (in the clear).
"""

from __future__ import annotations

import logging
from typing import Final

import msgspec

from micro import errors
from micro.config.base import SecretError
from micro.config.secrets import SecretBox
from micro.runtime.base import Service
from micro.runtime.replicas import Status
from micro.store.base import Record, Store

__all__ = ["DATABASE", "TABLE", "Desired", "RecordBook", "Sealer", "service_key", "status_key"]

log = logging.getLogger("micro.runtime")

DATABASE: Final = "micro"
TABLE: Final = "runtime"


class Desired(msgspec.Struct, omit_defaults=True):
    """A service that should run, as kept on the store."""

    service: Service
    account: str = ""
    secret: str = ""
    """The service account's secret, sealed."""
    replica: str = ""
    """The replica that runs it."""
    env: str = ""
    """On the store, the service's environment variables, sealed."""
    git: str = ""
    """The token that fetches its private repository, sealed (never shown)."""


def service_key(namespace: str, name: str, version: str) -> str:
    return f"service:{namespace}:{name}:{version}"


def status_key(namespace: str, name: str, version: str) -> str:
    return f"status:{namespace}:{name}:{version}"


class Sealer:
    """Encodes and decodes the records, their environment sealed with ``box``. Decoding
    raises msgspec.DecodeError or SecretError (another key) for a record it cannot read."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box

    def _seal(self, env: dict[str, str]) -> str:
        return self._box.seal(msgspec.json.encode(env)) if env else ""

    def _open(self, sealed: str, clear: dict[str, str]) -> dict[str, str]:
        if not sealed:
            return clear
        return msgspec.json.decode(self._box.open(sealed), type=dict[str, str])

    def encode_desired(self, desired: Desired) -> bytes:
        svc = desired.service
        kept = msgspec.structs.replace(
            desired, service=msgspec.structs.replace(svc, env={}), env=self._seal(svc.env)
        )
        return msgspec.json.encode(kept)

    def decode_desired(self, value: bytes) -> Desired:
        desired = msgspec.json.decode(value, type=Desired)
        desired.service.env = self._open(desired.env, desired.service.env)
        desired.env = ""
        return desired

    def encode_status(self, service: Service, replica: str, address: str) -> bytes:
        shown = msgspec.structs.replace(service, env={})
        return msgspec.json.encode(Status(shown, replica, address, env=self._seal(service.env)))

    def decode_status(self, value: bytes) -> Status:
        status = msgspec.json.decode(value, type=Status)
        status.service.env = self._open(status.env, status.service.env)
        status.env = ""
        return status


class RecordBook:
    """Reads and writes the runtime's records on ``store``, sealed with ``box``."""

    def __init__(self, store: Store, box: SecretBox) -> None:
        self._store = store
        self._sealer = Sealer(box)

    async def save(self, namespace: str, desired: Desired) -> None:
        """Keep (or replace) what should run."""
        svc = desired.service
        key = service_key(namespace, svc.name, svc.version)
        value = self._sealer.encode_desired(desired)
        await self._store.write(Record(key, value), database=DATABASE, table=TABLE)

    async def load(self, namespace: str, name: str, version: str) -> Desired:
        """What should run of one service; NotFound when nothing."""
        key = service_key(namespace, name, version)
        [record] = await self._store.read(key, database=DATABASE, table=TABLE)
        return self._sealer.decode_desired(record.value)

    async def in_namespace(self, namespace: str) -> list[Desired]:
        """The services that should run in ``namespace``."""
        return [d for ns, d in await self.all() if ns == namespace]

    async def all(self) -> list[tuple[str, Desired]]:
        """Every service that should run, with its namespace; a record that cannot be
        read is logged and skipped, so it never keeps the others down."""
        found = []
        records = await self._store.read("service:", database=DATABASE, table=TABLE, prefix=True)
        for record in records:
            try:
                desired = self._sealer.decode_desired(record.value)
            except (msgspec.DecodeError, SecretError) as exc:
                log.error("runtime: cannot read %s: %s", record.key, exc)
                continue
            found.append((record.key.split(":", 2)[1], desired))
        return found

    async def publish(self, namespace: str, service: Service, replica: str, address: str) -> None:
        """Keep the status of a service this replica runs, for the other replicas."""
        key = status_key(namespace, service.name, service.version)
        value = self._sealer.encode_status(service, replica, address)
        await self._store.write(Record(key, value), database=DATABASE, table=TABLE)

    async def status(self, namespace: str, svc: Service) -> Status | None:
        """The status a replica last published of ``svc``, if any can be read."""
        key = status_key(namespace, svc.name, svc.version)
        try:
            [record] = await self._store.read(key, database=DATABASE, table=TABLE)
        except errors.NotFound:
            return None
        try:
            return self._sealer.decode_status(record.value)
        except (msgspec.DecodeError, SecretError) as exc:
            log.error("runtime: cannot read %s: %s", key, exc)
            return None

    async def forget(self, namespace: str, svc: Service) -> None:
        """Drop a service's record and status."""
        for key in (service_key, status_key):
            await self._store.delete(
                key(namespace, svc.name, svc.version), database=DATABASE, table=TABLE
            )
