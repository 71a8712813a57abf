"""What the local runtime keeps on the store, in table ``runtime`` of database ``micro``:
the services that should run (``service:<ns>:<name>:<version>``) and the status each
replica last published of those it runs (``status:<ns>:<name>:<version>``).

Environment variables are secrets (passwords, API keys): both kinds of record keep them
sealed with the config secret key, beside an empty ``service.env``, so reading the store
shows no value. A record written before they were sealed still reads (in the clear).
"""

from __future__ import annotations

from typing import Final

import msgspec

from micro.config.secrets import SecretBox
from micro.runtime.base import Service
from micro.runtime.replicas import Status

__all__ = ["DATABASE", "TABLE", "Desired", "Sealer", "service_key", "status_key"]

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
