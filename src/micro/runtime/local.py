"""The local runtime: every service instance is a process on this machine.

The desired state (which services should run, from which source, with which
environment) is kept on the store, in the platform's own table ``runtime`` of database
``micro``, so a server that restarts, even after SIGKILL, brings back every service that
should run. Each service gets a service account (``<name>-<version>`` in its namespace,
scope ``service``) whose secret is kept sealed with the config secret key and handed to
its processes as ``MICRO_AUTH_ID``/``MICRO_AUTH_SECRET``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import re
import shutil
from pathlib import Path
from typing import Final

import msgspec

from micro import errors
from micro.auth.base import SERVICE_SCOPE, Auth
from micro.config.secrets import SecretBox
from micro.registry.base import Registry
from micro.runtime.base import LogStream, Runtime, Service
from micro.runtime.logs import LogHub, read_tail
from micro.runtime.process import kill_leftovers
from micro.runtime.source import SourceError, parse_git
from micro.runtime.supervisor import Layout, Platform, Supervisor
from micro.settings import Settings
from micro.store.base import Record, Store

__all__ = ["DATABASE", "TABLE", "LocalRuntime"]

log = logging.getLogger("micro.runtime")

DATABASE: Final = "micro"
TABLE: Final = "runtime"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}")
_MAX_INSTANCES: Final = 64
_MAX_UPLOAD: Final = 100 * 1024 * 1024


class _Desired(msgspec.Struct, omit_defaults=True):
    """A service that should run, as kept on the store."""

    service: Service
    account: str = ""
    secret: str = ""
    """The service account's secret, sealed."""


def _key(namespace: str, name: str, version: str) -> str:
    return f"service:{namespace}:{name}:{version}"


def _check(service: Service) -> None:
    where = "runtime.Runtime"
    if not _NAME.fullmatch(service.name):
        raise errors.BadRequest(
            where, f"invalid service name {service.name!r}: letters, digits, '.', '_', '-'"
        )
    if not _VERSION.fullmatch(service.version):
        raise errors.BadRequest(where, f"invalid version {service.version!r}")
    if not 1 <= service.instances <= _MAX_INSTANCES:
        raise errors.BadRequest(where, f"instances must be between 1 and {_MAX_INSTANCES}")
    for key in service.env:
        if not key or "=" in key or "\0" in key:
            raise errors.BadRequest(where, f"invalid environment variable name {key!r}")


class LocalRuntime(Runtime):
    """Runs services as processes of this machine; see the module docstring."""

    name = "local"

    def __init__(
        self,
        store: Store,
        auth: Auth,
        registry: Registry,
        folder: Path,
        *,
        secrets: SecretBox,
        grace: float = 10.0,
        restart_limit: int = 5,
        builds: int = 2,
    ) -> None:
        self._store = store
        self._auth = auth
        self._secrets = secrets
        self._layout = Layout(folder)
        self.platform = Platform(
            layout=self._layout,
            registry=registry,
            builds=asyncio.Semaphore(builds),
            grace=grace,
            restart_limit=restart_limit,
        )
        self._running: dict[tuple[str, str, str], Supervisor] = {}
        self._hubs: dict[tuple[str, str], LogHub] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def build(
        cls, settings: Settings, store: Store, auth: Auth, registry: Registry
    ) -> LocalRuntime:
        """The server's runtime: its files under ``MICRO_HOME/server/runtime``."""
        return cls(
            store,
            auth,
            registry,
            settings.home / "server" / "runtime",
            secrets=SecretBox.from_settings(settings),
        )

    async def attach(self, proxy: str) -> None:
        """Start serving: services reach the platform at ``proxy``. Processes a killed
        server left behind are stopped, and every service that should run is started."""
        self.platform.proxy = proxy
        left = await asyncio.to_thread(kill_leftovers, self._layout.root / "pids")
        if left:
            log.info("runtime: stopped %d process(es) a previous server left running", left)
        records = await self._store.read("service:", database=DATABASE, table=TABLE, prefix=True)
        for record in records:
            try:
                desired = msgspec.json.decode(record.value, type=_Desired)
                namespace = record.key.split(":", 2)[1]
                self._supervise(namespace, desired)
            except Exception as exc:  # one bad record must not keep the others down
                log.error("runtime: cannot restore %s: %s", record.key, exc)
        if records:
            log.info("runtime: restored %d service(s)", len(records))

    # -- Runtime --------------------------------------------------------------------------

    async def create(
        self, service: Service, *, force: bool = False, namespace: str = "micro"
    ) -> Service:
        _check(service)
        self._check_source(service, namespace)
        async with self._lock:
            existing = self._find(namespace, service.name, service.version)
            # one that failed is replaced without asking: run it again once it is fixed
            if any(sup.status not in ("error", "stopped") for sup in existing) and not force:
                raise errors.Conflict(
                    "runtime.Runtime.Create",
                    f"service {service.name} ({service.version}) is already running in "
                    f"namespace {namespace}: use --force to replace it, or micro update",
                )
            for sup in existing:
                await self._remove(sup, keep_source=True)
            account, secret = await self._account(service, namespace)
            desired = _Desired(
                service=Service(
                    name=service.name,
                    version=service.version,
                    source=service.source,
                    metadata=dict(service.metadata),
                    instances=service.instances,
                    env=dict(service.env),
                ),
                account=account,
                secret=self._secrets.seal(secret.encode()),
            )
            await self._save(namespace, desired)
            return self._supervise(namespace, desired).describe()

    async def read(
        self, *, name: str = "", version: str = "", namespace: str = "micro"
    ) -> builtins.list[Service]:
        found = [sup.describe() for sup in self._find(namespace, name, version)]
        return sorted(found, key=lambda s: (s.name, s.version))

    async def update(self, service: Service, *, namespace: str = "micro") -> Service:
        async with self._lock:
            current = self._running.get((namespace, service.name, service.version))
            if current is None:
                raise errors.NotFound("runtime.Runtime.Update", "Service not found")
            old = current.service
            merged = Service(
                name=old.name,
                version=old.version,
                source=service.source or old.source,
                metadata={**old.metadata, **service.metadata},
                instances=service.instances or old.instances,
                env=service.env or old.env,
            )
            _check(merged)
            self._check_source(merged, namespace)
            record = await self._load(namespace, old.name, old.version)
            await self._remove(current, keep_source=True, forget=False)
            desired = _Desired(service=merged, account=record.account, secret=record.secret)
            await self._save(namespace, desired)
            return self._supervise(namespace, desired).describe()

    async def delete(self, name: str, *, version: str = "", namespace: str = "micro") -> None:
        async with self._lock:
            found = self._find(namespace, name, version)
            if not name or not found:
                raise errors.NotFound("runtime.Runtime.Delete", "Service not found")
            for sup in found:
                await self._remove(sup)

    def logs(
        self,
        name: str,
        *,
        version: str = "",
        count: int = 15,
        follow: bool = False,
        namespace: str = "micro",
    ) -> LogStream:
        found = self._find(namespace, name, version)
        if not name or not found:
            raise errors.NotFound("runtime.Runtime.Logs", "Service not found")
        backlog = []
        for sup in found:
            backlog += read_tail(sup.log_files(), max(count, 0), sup.service.version)
        backlog.sort(key=lambda r: r.timestamp)
        backlog = backlog[-count:] if count > 0 else []
        hub = self._hub(namespace, name)
        return hub.stream(backlog, follow=follow, version=version)

    async def upload(self, name: str, version: str, data: bytes, *, namespace: str) -> str:
        _check(Service(name=name, version=version))
        if len(data) > _MAX_UPLOAD:
            raise errors.BadRequest(
                "runtime.Source.Upload", f"the source is larger than {_MAX_UPLOAD >> 20} MiB"
            )
        path = self._layout.archive(namespace, name, version)
        await asyncio.to_thread(_write_atomic, path, data)
        return f"source://{name}:{version}"

    async def close(self) -> None:
        """Stop every service's processes; what should run stays on the store."""
        await asyncio.gather(*(sup.stop() for sup in self._running.values()))
        for hub in self._hubs.values():
            hub.close()
        self._running.clear()

    # -- internals --------------------------------------------------------------------------

    def _find(self, namespace: str, name: str, version: str) -> list[Supervisor]:
        """The services of ``namespace`` named ``name`` (all when empty), of ``version``
        (every version when empty)."""
        return [
            sup
            for (ns, n, v), sup in self._running.items()
            if ns == namespace and (not name or n == name) and (not version or v == version)
        ]

    def _hub(self, namespace: str, name: str) -> LogHub:
        return self._hubs.setdefault((namespace, name), LogHub())

    def _check_source(self, service: Service, namespace: str) -> None:
        where = "runtime.Runtime"
        source = service.source
        if source.startswith("source://"):
            if source != f"source://{service.name}:{service.version}":
                raise errors.BadRequest(where, f"source {source!r} is not this service's upload")
            if not self._layout.archive(namespace, service.name, service.version).exists():
                raise errors.BadRequest(where, f"no uploaded source for {source}")
            return
        try:
            git = parse_git(source)
        except SourceError as exc:
            raise errors.BadRequest(where, str(exc)) from None
        if git is None:
            raise errors.BadRequest(
                where, f"unknown source {source!r}: upload a folder, or give a git URL"
            )

    def _supervise(self, namespace: str, desired: _Desired) -> Supervisor:
        secret = self._secrets.open(desired.secret).decode() if desired.secret else ""
        sup = Supervisor(
            self.platform,
            namespace,
            desired.service,
            credentials=(desired.account, secret),
            hub=self._hub(namespace, desired.service.name),
        )
        self._running[(namespace, desired.service.name, desired.service.version)] = sup
        sup.start()
        return sup

    async def _remove(
        self, sup: Supervisor, *, keep_source: bool = False, forget: bool = True
    ) -> None:
        """Stop a service; with ``forget``, also its record, account, files and logs."""
        ns, svc = sup.namespace, sup.service
        await sup.stop()
        self._running.pop((ns, svc.name, svc.version), None)
        if not forget:
            return
        await self._store.delete(_key(ns, svc.name, svc.version), database=DATABASE, table=TABLE)
        with contextlib.suppress(errors.NotFound):
            await self._auth.delete_account(_account_id(svc), namespace=ns)
        layout = self._layout
        folders = [layout.work(ns, svc.name, svc.version), layout.logs(ns, svc.name, svc.version)]
        for folder in folders:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        if not keep_source:
            with contextlib.suppress(FileNotFoundError):
                layout.archive(ns, svc.name, svc.version).unlink()
        if not any(k[0] == ns and k[1] == svc.name for k in self._running):
            hub = self._hubs.pop((ns, svc.name), None)
            if hub is not None:
                hub.close()

    async def _account(self, service: Service, namespace: str) -> tuple[str, str]:
        """A fresh service account for ``service`` (replacing one left over)."""
        account_id = _account_id(service)
        for _ in range(2):
            try:
                account = await self._auth.generate(
                    account_id,
                    type="service",
                    scopes=[SERVICE_SCOPE],
                    metadata={"service": service.name, "version": service.version},
                    namespace=namespace,
                )
                return account.id, account.secret
            except errors.Conflict:
                await self._auth.delete_account(account_id, namespace=namespace)
        raise errors.Conflict("runtime.Runtime.Create", f"account {account_id} is taken")

    async def _save(self, namespace: str, desired: _Desired) -> None:
        svc = desired.service
        await self._store.write(
            Record(_key(namespace, svc.name, svc.version), msgspec.json.encode(desired)),
            database=DATABASE,
            table=TABLE,
        )

    async def _load(self, namespace: str, name: str, version: str) -> _Desired:
        [record] = await self._store.read(
            _key(namespace, name, version), database=DATABASE, table=TABLE
        )
        return msgspec.json.decode(record.value, type=_Desired)


def _account_id(service: Service) -> str:
    version = re.sub(r"[^A-Za-z0-9._-]", "-", service.version)
    return f"{service.name}-{version}"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
