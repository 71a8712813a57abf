"""The etcd registry: service discovery shared by every server of a cluster.

One key per node, under the platform's prefix (``MICRO_PREFIX``), each segment
percent-encoded so a ``/`` in a name stays inside its segment::

    <prefix>/registry/<domain>/<service>/<version>/<node id>  ->  JSON of the service
                                                                 version with that node

A registration with a TTL puts its keys with a new etcd lease of that TTL (whole seconds,
rounded up; etcd raises it to its minimum, 2 s with default timings), then revokes the
lease they had before. The framework re-registers every interval, so the node of a
process that died is no longer refreshed and etcd deletes its key when the lease ends.
The nodes of one register or deregister call change in one transaction, so a watcher
sees one change per call, as with the memory registry. A version's metadata and
endpoints are those of its most recently written node (the last registration replaces
them); its nodes come in registration order.

A watcher reads its key range, then follows etcd's watch from just after that revision
(so nothing falls between the two), keeps the state of the range, and turns each
revision's events into create / update / delete of the versions they touch. A broken
stream is resumed from the last revision seen; if etcd compacted that revision away
meanwhile, or came back with an older history (its data lost or restored), the range is
read again and the difference reported.

The etcd client is ours (:mod:`micro.registry._etcd_client`, HTTP/1.1 to etcd's JSON
gateway); :meth:`EtcdRegistry._failure` is the one place its errors become micro errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Self
from urllib.parse import quote, unquote

import msgspec

from micro import errors
from micro.registry._etcd_client import EtcdClient, EtcdError, Event, KeyValue, parse_endpoints
from micro.registry.base import (
    DEFAULT_DOMAIN,
    WILDCARD_DOMAIN,
    Action,
    Registry,
    Result,
    Service,
    Watcher,
    check_registration,
    check_service,
)

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["DEFAULT_ADDRESS", "EtcdRegistry"]

log = logging.getLogger("micro.registry")

DEFAULT_ADDRESS: Final = "http://127.0.0.1:2379"
"""Where etcd listens by default, used when ``MICRO_REGISTRY_ADDRESS`` is not set."""

_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}(/[A-Za-z0-9_.:-]{1,64})*")
_WATCH_BUFFER = 10_000
_RETRY_FIRST, _RETRY_MAX = 0.05, 5.0

_BACKEND_ERRORS = (OSError, EOFError, EtcdError, ValueError)
"""What the client raises: sockets, a connection cut mid-answer, etcd's own errors, and
answers we cannot parse (msgspec's errors are ``ValueError`` too)."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Service).decode

_VersionId = tuple[str, str, str]
"""(domain, service name, version)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """One node key, read back."""

    domain: str
    node: str
    service: Service
    """The version with this one node."""
    created: int
    modified: int

    @property
    def version_id(self) -> _VersionId:
        return (self.domain, self.service.name, self.service.version)


def _merge(entries: Iterable[_Entry]) -> Service | None:
    """The version the node keys ``entries`` make together; ``None`` for none."""
    ordered = sorted(entries, key=lambda e: (e.created, e.node))
    if not ordered:
        return None
    latest = max(ordered, key=lambda e: e.modified).service
    return Service(
        name=latest.name,
        version=latest.version,
        metadata=latest.metadata,
        endpoints=latest.endpoints,
        nodes=[node for entry in ordered for node in entry.service.nodes],
    )


def _services(entries: Iterable[_Entry]) -> list[Service]:
    """Node keys merged per version, sorted by name then version (then domain)."""
    versions: dict[_VersionId, list[_Entry]] = {}
    for entry in entries:
        versions.setdefault(entry.version_id, []).append(entry)
    merged = [(vid, _merge(group)) for vid, group in versions.items()]
    return [svc for vid, svc in sorted(merged, key=lambda m: (m[0][1], m[0][2], m[0][0])) if svc]


def _segment(name: str) -> str:
    return quote(name, safe="")


class EtcdRegistry(Registry):
    """Registrations in etcd at ``address`` (``http://host:2379``, several comma-separated).

    ``prefix`` starts every key (give each platform sharing an etcd its own);
    ``timeout`` bounds a call and ``connect_timeout`` a connection attempt.
    """

    name = "etcd"

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        prefix: str = "micro",
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"invalid etcd key prefix {prefix!r}: letters, digits, '_', '.', ':', '-', '/'"
            )
        self.address = address
        self.prefix = prefix
        self._client = EtcdClient(
            parse_endpoints(address), timeout=timeout, connect_timeout=connect_timeout
        )
        self._root = f"{prefix}/registry/"
        self._leases: dict[bytes, int] = {}
        """Our node keys -> the lease we last put them with (to revoke once replaced)."""
        self._watchers: set[_EtcdWatcher] = set()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> EtcdRegistry:
        """The server's registry, at ``MICRO_REGISTRY_ADDRESS`` under ``MICRO_PREFIX``."""
        return cls(settings.registry_address or DEFAULT_ADDRESS, prefix=settings.backend_prefix)

    def __repr__(self) -> str:
        return f"EtcdRegistry({self.address!r}, prefix={self.prefix!r})"

    # -- the interface ----------------------------------------------------------------------

    async def register(
        self, service: Service, *, ttl: float | None = None, domain: str = DEFAULT_DOMAIN
    ) -> None:
        check_registration(service, ttl, domain)
        nodes = {node.id: node for node in service.nodes}  # one put per key in a txn
        puts = {
            self._key(domain, service, node_id): _encode(
                Service(
                    name=service.name,
                    version=service.version,
                    metadata=service.metadata,
                    endpoints=service.endpoints,
                    nodes=[node],
                )
            )
            for node_id, node in nodes.items()
        }
        async with self._calling():
            lease = 0  # no TTL (or an infinite one): kept until deregistered, as in memory
            if ttl is not None and not math.isinf(ttl):
                lease = await self._client.grant(math.ceil(ttl))
            await self._client.txn([EtcdClient.put(k, v, lease) for k, v in puts.items()])
        await self._retire(list(puts), lease)

    async def deregister(self, service: Service, *, domain: str = DEFAULT_DOMAIN) -> None:
        check_service(service, domain)
        keys = list(dict.fromkeys(self._key(domain, service, node.id) for node in service.nodes))
        if not keys:
            return
        async with self._calling():
            await self._client.txn([EtcdClient.delete(key) for key in keys])
        await self._retire(keys, 0)

    async def get_service(self, name: str, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        prefix = self._range(domain, name)
        _, entries = await self._read(prefix)
        found = _services(e for e in entries if e.service.name == name)
        if not found:
            raise errors.NotFound("registry.Registry.GetService", f"service {name} not found")
        return found

    async def list_services(self, *, domain: str = DEFAULT_DOMAIN) -> list[Service]:
        _, entries = await self._read(self._range(domain, None))
        return _services(entries)

    def watch(self, *, service: str | None = None, domain: str = DEFAULT_DOMAIN) -> Watcher:
        watcher = _EtcdWatcher(self, service, domain)
        self._watchers.add(watcher)
        return watcher

    async def close(self) -> None:
        """Stop the watchers and close connections; registrations stay until their TTL."""
        self._closed = True
        for watcher in list(self._watchers):
            await watcher.stop()
        await self._client.close()

    # -- keys -------------------------------------------------------------------------------

    def _key(self, domain: str, service: Service, node_id: str) -> bytes:
        parts = (domain, service.name, service.version, node_id)
        return (self._root + "/".join(_segment(p) for p in parts)).encode()

    def _range(self, domain: str, service: str | None) -> str:
        """The key prefix of a domain (every domain for ``*``), or of one service in it."""
        if domain == WILDCARD_DOMAIN:
            return self._root
        return self._root + _segment(domain) + "/" + (_segment(service) + "/" if service else "")

    def _parse(self, key: bytes) -> tuple[_VersionId, str] | None:
        """(domain, service, version) and node id of a node key; ``None`` for another key."""
        text = key.decode(errors="replace")
        if not text.startswith(self._root):
            return None
        parts = text[len(self._root) :].split("/")
        if len(parts) != 4:
            return None
        domain, name, version, node = (unquote(p) for p in parts)
        return (domain, name, version), node

    def _entry(self, kv: KeyValue) -> _Entry | None:
        parsed = self._parse(kv.key)
        if parsed is None:
            return None
        try:
            service = _decode(kv.value)
        except msgspec.DecodeError:
            log.warning("%r: skipping unreadable registry key %r", self, kv.key)
            return None
        return _Entry(parsed[0][0], parsed[1], service, kv.create_revision, kv.mod_revision)

    async def _read(self, prefix: str) -> tuple[int, list[_Entry]]:
        """Every node key under ``prefix``, and the revision they were read at."""
        async with self._calling():
            revision, kvs = await self._client.range_prefix(prefix.encode())
        return revision, [entry for kv in kvs if (entry := self._entry(kv)) is not None]

    async def _retire(self, keys: list[bytes], lease: int) -> None:
        """Note ``keys``' new lease and revoke the old ones no key of ours holds any more.

        Best effort: a lease not revoked still ends at its TTL, holding no key.
        """
        old = {self._leases.pop(key, 0) for key in keys}
        if lease:
            self._leases.update(dict.fromkeys(keys, lease))
        for stale in old - {0, lease} - set(self._leases.values()):
            try:
                await self._client.revoke(stale)
            except _BACKEND_ERRORS as exc:
                log.debug("%r: lease %d left to expire: %s", self, stale, exc)

    # -- errors -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _calling(self) -> AsyncIterator[None]:
        """Around every call to etcd: its failures become micro errors."""
        if self._closed:
            raise errors.ServiceUnavailable("registry", f"{self!r} is closed")
        try:
            yield
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> errors.MicroError:
        """The one place a socket or etcd error becomes ours."""
        where = f"registry etcd at {self.address}"
        if isinstance(exc, EtcdError):
            if exc.code in (3, 11):  # gRPC InvalidArgument, OutOfRange: e.g. too large
                return errors.BadRequest("registry", f"{where} refused it: {exc.message}")
            if exc.code in (4, 14):  # DeadlineExceeded, Unavailable: no leader, timed out
                return errors.ServiceUnavailable("registry", f"{where} unavailable: {exc.message}")
            return errors.InternalServerError("registry", f"{where} failed: {exc.message}")
        if isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(exc, TimeoutError):
            reason = "no answer in time"
        elif isinstance(exc, EOFError):
            reason = "connection closed mid-answer"
        elif isinstance(exc, ValueError) and not isinstance(exc, OSError):
            return errors.InternalServerError("registry", f"{where} sent a bad answer: {exc}")
        else:
            reason = str(exc) or type(exc).__name__
        return errors.ServiceUnavailable("registry", f"{where} unreachable: {reason}")


class _EtcdWatcher(Watcher):
    """One etcd watch on a key range, with the range's state to tell create from update."""

    def __init__(self, owner: EtcdRegistry, service: str | None, domain: str) -> None:
        self._owner = owner
        self._service = service
        self._prefix = owner._range(domain, service)
        self._queue: asyncio.Queue[Result | None] = asyncio.Queue(_WATCH_BUFFER)
        self._versions: dict[_VersionId, dict[str, _Entry]] = {}
        self._revision = 0
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._stopped = False

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def next(self) -> Result:
        if not self._stopped:
            await self._start()
        if self._stopped and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._owner._watchers.discard(self)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    # -- following etcd ---------------------------------------------------------------------

    async def _start(self) -> None:
        """Read the range (raising if etcd is down), then follow it from that revision."""
        async with self._starting:
            if self._task is not None or self._stopped:
                return
            revision, entries = await self._owner._read(self._prefix)
            self._load(revision, entries, report=False)
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        delay, failing = _RETRY_FIRST, False
        while not self._stopped:
            try:
                stream = self._owner._client.watch(self._prefix.encode(), self._revision + 1)
                async with contextlib.aclosing(stream):
                    async for message in stream:
                        if message.created and 0 < message.header.revision < self._revision:
                            # etcd is behind what we saw (started afresh, or restored from
                            # a backup): a watch from our revision would see nothing until
                            # etcd's caught up, and the keys it lost are never deleted.
                            log.warning(
                                "%r: etcd is back at revision %d, before %d; reading again",
                                self._owner,
                                message.header.revision,
                                self._revision,
                            )
                            revision, entries = await self._owner._read(self._prefix)
                            self._load(revision, entries, report=True)
                            break
                        if message.canceled:  # compacted past our revision, or etcd ended it
                            log.info(
                                "%r: watch canceled by etcd (%s); reading again",
                                self._owner,
                                message.cancel_reason or f"compacted to {message.compact_revision}",
                            )
                            revision, entries = await self._owner._read(self._prefix)
                            self._load(revision, entries, report=True)
                            break
                        if failing:
                            log.info("%r: watch resumed", self._owner)
                        delay, failing = _RETRY_FIRST, False
                        self._apply(message.events)
                        if self._stopped:
                            return
            except (*_BACKEND_ERRORS, errors.MicroError) as exc:
                if not failing:
                    log.warning("%r: watch broken (%s); reconnecting", self._owner, exc)
                failing = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    def _apply(self, events: list[Event]) -> None:
        """Apply a watch message's events, reporting once per version per revision."""
        for revision, group in itertools.groupby(events, key=lambda e: e.kv.mod_revision):
            if revision <= self._revision:
                continue
            before: dict[_VersionId, Service | None] = {}
            for event in group:
                if event.type == "DELETE":
                    parsed = self._owner._parse(event.kv.key)
                    if parsed is None or not self._wanted(parsed[0]):
                        continue
                    vid, node = parsed
                    if vid not in before:
                        before[vid] = _merge(self._versions.get(vid, {}).values())
                    nodes = self._versions.get(vid, {})
                    nodes.pop(node, None)
                    if not nodes:
                        self._versions.pop(vid, None)
                else:
                    entry = self._owner._entry(event.kv)
                    if entry is None or not self._wanted(entry.version_id):
                        continue
                    vid = entry.version_id
                    if vid not in before:
                        before[vid] = _merge(self._versions.get(vid, {}).values())
                    self._versions.setdefault(vid, {})[entry.node] = entry
            self._revision = revision
            for vid, old in before.items():
                self._report(old, _merge(self._versions.get(vid, {}).values()))

    def _load(self, revision: int, entries: list[_Entry], *, report: bool) -> None:
        """Take the state read at ``revision``; with ``report``, tell what differs."""
        versions: dict[_VersionId, dict[str, _Entry]] = {}
        for entry in entries:
            if self._wanted(entry.version_id):
                versions.setdefault(entry.version_id, {})[entry.node] = entry
        old, self._versions, self._revision = self._versions, versions, revision
        if report:
            for vid in dict.fromkeys([*old, *versions]):
                before = _merge(old.get(vid, {}).values())
                self._report(before, _merge(versions.get(vid, {}).values()))

    def _wanted(self, vid: _VersionId) -> bool:
        return self._service is None or vid[1] == self._service

    def _report(self, before: Service | None, after: Service | None) -> None:
        action: Action
        if before is None and after is not None:
            action, service = "create", after
        elif before is not None and after is None:
            action, service = "delete", before
        elif before is not None and after is not None and before != after:
            action, service = "update", after
        else:
            return
        if self._stopped:
            return
        try:
            self._queue.put_nowait(
                Result(action=action, service=service, timestamp=int(time.time()))
            )
        except asyncio.QueueFull:
            # A watcher that stopped reading would grow without bound: end it instead.
            self._stopped = True
            self._owner._watchers.discard(self)
