"""The local runtime: every service instance is a process on this machine.

The desired state (which services should run, from which source, with which
environment, on which replica) is kept on the store, in the platform's own table
``runtime`` of database ``micro``, and so are uploaded sources (:mod:`.archives`). Each
service gets a service account (``<name>-<version>`` in its namespace, scope ``service``)
whose secret is kept sealed with the config secret key and handed to its processes as
``MICRO_AUTH_ID``/``MICRO_AUTH_SECRET``.

Replicas sharing one store each run the services they were asked to run (the record
names its replica). Twice a second each replica *reconciles*: it runs what its records ask
for, stops what no record gives it any more (killed or taken over through another
replica), and adopts the services of replicas that are gone: a replica is alive while
its core services are in the registry, held there by a lease of ``MICRO_REPLICA_TTL``.
Among the living, one adopter per service is picked by rendezvous hashing, so replicas
that agree on who is alive never both adopt; if they briefly disagree, the record's last
writer keeps the service and the other stops its copy at its next round. A lone server is
the same story with one replica: after a restart it adopts everything its predecessor
ran. Each replica also keeps every service's status on the store, so ``micro status``
through any replica shows all of them.
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
from micro.registry.base import Service as RegistryService
from micro.runtime import archives
from micro.runtime.base import LogStream, Runtime, Service, check_service
from micro.runtime.build import find_uv
from micro.runtime.logs import LogHub, read_tail
from micro.runtime.process import kill_leftovers
from micro.runtime.records import DATABASE, TABLE, Desired, RecordBook
from micro.runtime.replicas import Key, adopter, reachable, with_replica
from micro.runtime.rollout import STAGED, Rollout
from micro.runtime.sandbox import Sandbox, SandboxError, for_server
from micro.runtime.source import (
    SourceError,
    check_archive,
    outside_roots,
)
from micro.runtime.supervisor import Layout, Platform, Supervisor
from micro.runtime.uploads import Uploads
from micro.settings import Settings
from micro.store.base import Store

__all__ = ["DATABASE", "TABLE", "LocalRuntime"]  # where its records are: see .records

log = logging.getLogger("micro.runtime")

_MAX_UPLOAD: Final = 100 * 1024 * 1024
_RECONCILE: Final = 0.5
"""Seconds between two reconciliations (see the module docstring)."""
_REPLICAS: Final = "runtime"
"""The core service whose registered nodes (``runtime-<replica>``) are the live replicas."""


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
        sandbox: Sandbox,
        file_roots: tuple[Path, ...] = (),
        replica: str = "local",
        grace: float = 10.0,
        restart_limit: int = 5,
        builds: int = 2,
    ) -> None:
        self._store = store
        self._auth = auth
        self._registry = registry
        self._secrets = secrets
        self._records = RecordBook(store, secrets)
        self._file_roots = file_roots
        self.replica = replica
        self._layout = Layout(folder)
        self._uploads = Uploads(store, self._layout)
        self.platform = Platform(
            layout=self._layout,
            registry=registry,
            builds=asyncio.Semaphore(builds),
            sandbox=sandbox,
            replica=replica,
            grace=grace,
            restart_limit=restart_limit,
        )
        self._running: dict[Key, Supervisor] = {}
        self._rollouts: dict[Key, Rollout] = {}
        """Rolling updates under way (see :mod:`micro.runtime.rollout`)."""
        self._update_errors: dict[Key, str] = {}
        """Why the last rolling update of a service failed (the old version serves)."""
        self._published: dict[Key, Service] = {}
        self._owners: dict[Key, str] = {}
        """Which replica runs each service, as of the last reconciliation."""
        self._hubs: dict[tuple[str, str], LogHub] = {}
        self._lock = asyncio.Lock()
        self._loop: asyncio.Task[None] | None = None
        self._failing = False

    @classmethod
    def build(
        cls, settings: Settings, store: Store, auth: Auth, registry: Registry
    ) -> LocalRuntime:
        """The server's runtime: its files under ``MICRO_HOME/server/runtime``, its
        processes in the sandbox :func:`~micro.runtime.sandbox.for_server` gives."""
        uv = find_uv()
        sandbox = for_server(settings, needed=[Path(uv)] if uv else [])
        return cls(
            store,
            auth,
            registry,
            settings.home / "server" / "runtime",
            secrets=SecretBox.from_settings(settings),
            sandbox=sandbox,
            file_roots=settings.runtime_file_roots,
            replica=settings.replica,
        )

    async def attach(self, proxy: str) -> None:
        """Start serving: services reach the platform at ``proxy``. Processes a killed
        server left behind are stopped, and what this replica should run is started."""
        self.platform.proxy = proxy
        left = await asyncio.to_thread(kill_leftovers, self._layout.root / "pids")
        if left:
            log.info("runtime: stopped %d process(es) a previous server left running", left)
        await self._round()
        self._loop = asyncio.get_running_loop().create_task(self._reconcile_forever())

    # -- Runtime --------------------------------------------------------------------------

    async def create(
        self,
        service: Service,
        *,
        force: bool = False,
        namespace: str = "micro",
        git_token: str = "",
    ) -> Service:
        check_service(service)
        await self._check_source(service, namespace)
        async with self._lock:
            key = (namespace, service.name, service.version)
            current = await self._describe(namespace, service.name, service.version)
            # one that failed is replaced without asking: run it again once it is fixed
            if any(s.status not in ("error", "stopped") for s in current) and not force:
                raise errors.Conflict(
                    "runtime.Runtime.Create",
                    f"service {service.name} ({service.version}) is already running in "
                    f"namespace {namespace}: use --force to replace it, or micro update",
                )
            sup = self._running.get(key)
            if sup is not None:
                await self._remove(sup, keep_source=True, forget=False)
            account, secret = await self._account(service, namespace)
            desired = Desired(
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
                replica=self.replica,
                git=self._secrets.seal(git_token.encode()) if git_token else "",
            )
            self._update_errors.pop(key, None)
            await self._records.save(namespace, desired)
            return (await self._start(namespace, desired)).describe()

    async def read(
        self, *, name: str = "", version: str = "", namespace: str = "micro"
    ) -> builtins.list[Service]:
        found = await self._describe(namespace, name, version)
        return sorted(found, key=lambda s: (s.name, s.version))

    async def update(
        self, service: Service, *, namespace: str = "micro", git_token: str = ""
    ) -> Service:
        """Scale (no source nor environment given: only the instance count changes, no
        process restarts), or roll out a new build: see :mod:`micro.runtime.rollout`."""
        async with self._lock:
            try:
                record = await self._records.load(namespace, service.name, service.version)
            except errors.NotFound:
                raise errors.NotFound("runtime.Runtime.Update", "Service not found") from None
            old = record.service
            key = (namespace, old.name, old.version)
            current = self._running.get(key)
            if not service.source and not service.env:
                return await self._scale(namespace, record, service.instances or old.instances)
            merged = Service(
                name=old.name,
                version=old.version,
                source=service.source or old.source,
                metadata={**old.metadata, **service.metadata},
                instances=service.instances or old.instances,
                env=service.env or old.env,
            )
            check_service(merged)
            await self._check_source(merged, namespace)
            git = self._secrets.seal(git_token.encode()) if git_token else record.git
            # updated through this replica, it runs here (its old replica stops its copy)
            desired = Desired(
                service=merged,
                account=record.account,
                secret=record.secret,
                replica=self.replica,
                git=git,
            )
            self._update_errors.pop(key, None)
            previous = self._rollouts.pop(key, None)
            if previous is not None:
                await previous.cancel()
            if current is None or current.status != "running":
                # nothing serves: there is nothing to keep up, restart at once
                if current is not None:
                    await self._remove(current, keep_source=True, forget=False)
                desired.service.source = await self._uploads.promote(namespace, merged)
                await self._records.save(namespace, desired)
                return (await self._start(namespace, desired)).describe()
            fresh = self._supervisor(namespace, desired, beside=True)
            rollout = Rollout(current, fresh)
            self._rollouts[key] = rollout
            rollout.begin(lambda ok: self._rolled(key, rollout, desired, ok))
            return self._shown(key, current)

    async def _rolled(self, key: Key, rollout: Rollout, desired: Desired, ok: bool) -> None:
        """The end of a rolling update: the new version replaces the old, or is dropped."""
        namespace = key[0]
        async with self._lock:
            if self._rollouts.get(key) is not rollout:
                return  # cancelled meanwhile (killed, updated again, taken over)
            del self._rollouts[key]
            if not ok:
                self._update_errors[key] = rollout.error
                await rollout.fresh.stop()
                await self._uploads.drop_staged(namespace, desired.service)
                return
            desired.service.source = await self._uploads.promote(namespace, desired.service)
            rollout.fresh.service.source = desired.service.source
            await self._records.save(namespace, desired)
            self._running[key] = rollout.fresh
            self._published.pop(key, None)
        # drained: its nodes deregister before it stops serving; not cut short by a kill
        await asyncio.shield(rollout.old.retire())

    async def _scale(self, namespace: str, record: Desired, instances: int) -> Service:
        svc = record.service
        scaled = msgspec.structs.replace(svc, instances=instances)
        check_service(scaled)
        record.service = scaled
        await self._records.save(namespace, record)
        key = (namespace, svc.name, svc.version)
        sup = self._running.get(key)
        if sup is None:
            return scaled  # another replica runs it: it scales at its next round
        await sup.scale(instances)
        return self._shown(key, sup)

    def expecting(self, namespace: str, name: str) -> str:
        """What a service ``name`` of ``namespace`` with no node is: ``"restarting"`` when
        the runtime runs it (on any replica: starting, restarting, updating), ``"error"``
        when it failed here, ``""`` when the runtime runs no such service."""
        here = [sup for (ns, n, _), sup in self._running.items() if ns == namespace and n == name]
        if here and all(sup.state in ("error", "stopped") for sup in here):
            return "error"
        if here or any(ns == namespace and n == name for ns, n, _ in self._owners):
            return "restarting"
        return ""

    async def delete(self, name: str, *, version: str = "", namespace: str = "micro") -> None:
        async with self._lock:
            found = [
                d
                for d in await self._records.in_namespace(namespace)
                if d.service.name == name and (not version or d.service.version == version)
            ]
            if not name or not found:
                raise errors.NotFound("runtime.Runtime.Delete", "Service not found")
            for desired in found:
                svc = desired.service
                self._update_errors.pop((namespace, svc.name, svc.version), None)
                sup = self._running.get((namespace, svc.name, svc.version))
                if sup is not None:
                    await self._remove(sup)
                else:  # another replica runs it: it stops its copy when the record is gone
                    await self._forget(namespace, svc)

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
            elsewhere = sorted(
                replica
                for (ns, n, v), replica in self._owners.items()
                if ns == namespace and n == name and (not version or v == version)
            )
            if name and elsewhere:
                raise errors.NotFound(
                    "runtime.Runtime.Logs",
                    f"service {name} runs on replica {', '.join(elsewhere)}, which keeps its "
                    "logs: ask that replica (MICRO_PROXY=<its address> micro logs ...)",
                )
            raise errors.NotFound("runtime.Runtime.Logs", "Service not found")
        backlog = []
        for sup in found:
            backlog += read_tail(sup.log_files(), max(count, 0), sup.service.version)
        backlog.sort(key=lambda r: r.timestamp)
        backlog = backlog[-count:] if count > 0 else []
        hub = self._hub(namespace, name)
        return hub.stream(backlog, follow=follow, version=version)

    async def upload(self, name: str, version: str, data: bytes, *, namespace: str) -> str:
        check_service(Service(name=name, version=version.removesuffix(STAGED)))
        where = "runtime.Source.Upload"
        self._check_sandbox(namespace, where)
        if len(data) > _MAX_UPLOAD:
            raise errors.BadRequest(where, f"the source is larger than {_MAX_UPLOAD >> 20} MiB")
        try:  # a hostile or huge archive is refused now, not at its first start
            await asyncio.to_thread(check_archive, data)
        except SourceError as exc:
            raise errors.BadRequest(where, str(exc)) from None
        await self._uploads.save(namespace, name, version, data)
        return f"source://{name}:{version}"

    async def close(self) -> None:
        """Stop every service's processes; what should run stays on the store (another
        replica adopts it once this one's registration is gone)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        async with self._lock:
            rollouts = list(self._rollouts.values())
            self._rollouts.clear()
            await asyncio.gather(*(rollout.cancel() for rollout in rollouts))
            await asyncio.gather(*(sup.stop() for sup in self._running.values()))
            for hub in self._hubs.values():
                hub.close()
            self._running.clear()

    # -- reconciling ----------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(_RECONCILE)
            await self._round()

    async def _round(self) -> None:
        """One reconciliation; a backend that is down skips it (and says so once)."""
        try:
            async with self._lock:
                await self._reconcile()
                await self._publish()
        except errors.MicroError as exc:
            if not self._failing:
                log.warning("runtime: cannot reconcile the services to run: %s", exc.detail)
            self._failing = True
        except Exception:  # a bug must not end reconciling for good
            log.exception("runtime: reconciling failed")
        else:
            if self._failing:
                log.info("runtime: reconciling again")
            self._failing = False

    async def _reconcile(self) -> None:
        records = await self._records.all()
        live = await self._live()
        mine: dict[Key, Desired] = {}
        for namespace, desired in records:
            svc = desired.service
            key = (namespace, svc.name, svc.version)
            owner = desired.replica
            if owner != self.replica:
                if owner in live or adopter(live, key) != self.replica:
                    continue
                desired.replica = self.replica
                await self._records.save(namespace, desired)
                log.info(
                    "runtime: adopting %s (%s) of namespace %s from replica %s",
                    svc.name,
                    svc.version,
                    namespace,
                    owner or "(none)",
                )
                await self._drop_nodes(namespace, svc, owner)
            mine[key] = desired
        kept = {(ns, d.service.name, d.service.version) for ns, d in records}
        self._owners = {(ns, d.service.name, d.service.version): d.replica for ns, d in records}
        for key, sup in list(self._running.items()):
            if key not in mine:  # killed or taken over through another replica
                await self._remove(sup, forget=False)
                if key not in kept:
                    await self._drop_files(*key)
        for key, desired in mine.items():
            if key not in self._running:
                await self._start(key[0], desired)

    async def _live(self) -> set[str]:
        """The replicas whose core services are registered, and this one."""
        try:
            found = await self._registry.get_service(_REPLICAS, domain="micro")
        except errors.NotFound:
            found = []
        prefix = f"{_REPLICAS}-"
        live = {n.id[len(prefix) :] for s in found for n in s.nodes if n.id.startswith(prefix)}
        return live | {self.replica}

    async def _publish(self) -> None:
        """Keep the status of every service this replica runs on the store, for the
        others' ``micro status``; written only when it changed."""
        for key, sup in self._running.items():
            described = self._shown(key, sup)
            if self._published.get(key) == described:
                continue
            await self._records.publish(key[0], described, self.replica, self.platform.proxy)
            self._published[key] = described

    async def _drop_nodes(self, namespace: str, svc: Service, replica: str) -> None:
        """Deregister the nodes a gone replica's instances left (their leases would lapse
        only after the services' own TTL)."""
        if not replica:
            return
        prefix = f"{svc.name}-{replica}-"
        try:
            found = await self._registry.get_service(svc.name, domain=namespace)
        except errors.NotFound:
            return
        for record in found:
            stale = [n for n in record.nodes if n.id.startswith(prefix)]
            if stale:
                gone = RegistryService(name=record.name, version=record.version, nodes=stale)
                await self._registry.deregister(gone, domain=namespace)

    # -- what the runtime shows -----------------------------------------------------------

    async def _describe(self, namespace: str, name: str, version: str) -> list[Service]:
        """Every service of ``namespace`` matching ``name``/``version`` (empty: all), with
        its status: live for this replica's, as last published for another's, and
        ``pending`` for one whose replica is gone (until it is adopted)."""
        shown = []
        records = [
            d
            for d in await self._records.in_namespace(namespace)
            if (not name or d.service.name == name)
            and (not version or d.service.version == version)
        ]
        live: set[str] | None = None
        answering: dict[str, bool] = {}
        for desired in records:
            svc = desired.service
            sup = self._running.get((namespace, svc.name, svc.version))
            if sup is not None and desired.replica == self.replica:
                shown.append(
                    with_replica(self._shown((namespace, svc.name, svc.version), sup), self.replica)
                )
                continue
            if live is None:
                live = await self._live()
            status = await self._records.status(namespace, svc)
            if status is not None and status.replica != desired.replica:
                status = None  # its previous replica's word: the new one has not spoken yet
            alive = desired.replica in live
            if alive and status is not None:
                if status.address not in answering:
                    answering[status.address] = await reachable(status.address)
                alive = answering[status.address]
                if alive:
                    shown.append(with_replica(status.service, desired.replica))
                    continue
            waiting = with_replica(msgspec.structs.replace(svc, status="pending"), desired.replica)
            if alive:
                note = f"being started by replica {desired.replica}"
            elif desired.replica:
                note = f"replica {desired.replica} is gone; another replica adopts its services"
            else:
                note = "waiting for a replica to run it"
            waiting.metadata["progress"] = note
            shown.append(waiting)
        return shown

    # -- internals --------------------------------------------------------------------------

    def _find(self, namespace: str, name: str, version: str) -> list[Supervisor]:
        """The services of ``namespace`` this replica runs named ``name`` (all when
        empty), of ``version`` (every version when empty)."""
        return [
            sup
            for (ns, n, v), sup in self._running.items()
            if ns == namespace and (not name or n == name) and (not version or v == version)
        ]

    def _shown(self, key: Key, sup: Supervisor) -> Service:
        """A service as shown: its supervisor's description, with a rolling update under
        way (``updating``: the new version's status) or failed (``update_error``)."""
        described = sup.describe()
        rollout = self._rollouts.get(key)
        if rollout is not None:
            described.metadata["updating"] = rollout.progress()
        elif key in self._update_errors:
            described.metadata["update_error"] = self._update_errors[key]
        return described

    def _hub(self, namespace: str, name: str) -> LogHub:
        return self._hubs.setdefault((namespace, name), LogHub())

    def check_source(self, source: str, *, platform_admin: bool) -> None:
        """A ``file://`` source reads the server's disk: platform admins may run any, other
        admins only those under ``MICRO_RUNTIME_FILE_ROOTS``."""
        where = "runtime.Runtime"
        try:
            path = None if platform_admin else outside_roots(source, self._file_roots)
        except SourceError as exc:
            raise errors.BadRequest(where, str(exc)) from None
        if path is not None:
            raise errors.Forbidden(
                where,
                f"{path} is not under a folder the server lets namespaces run file:// sources "
                "from (MICRO_RUNTIME_FILE_ROOTS): only platform admins may run it",
            )

    def _check_sandbox(self, namespace: str, where: str) -> None:
        """Forbidden when this server will not run ``namespace``'s services at all."""
        try:
            self.platform.sandbox.check(namespace)
        except SandboxError as exc:
            raise errors.Forbidden(where, str(exc)) from None

    async def _check_source(self, service: Service, namespace: str) -> None:
        self._check_sandbox(namespace, "runtime.Runtime")
        await self._uploads.check(service, namespace)

    async def _start(self, namespace: str, desired: Desired) -> Supervisor:
        """Supervise ``desired`` here, its upload fetched from the store first when this
        replica has no copy (it was uploaded through another)."""
        await self._uploads.fetch(namespace, desired.service)
        sup = self._supervisor(namespace, desired)
        self._running[(namespace, desired.service.name, desired.service.version)] = sup
        sup.start()
        return sup

    def _supervisor(self, namespace: str, desired: Desired, *, beside: bool = False) -> Supervisor:
        """A supervisor of ``desired``, not started; its secrets opened."""
        secret = self._secrets.open(desired.secret).decode() if desired.secret else ""
        token = self._secrets.open(desired.git).decode() if desired.git else ""
        return Supervisor(
            self.platform,
            namespace,
            desired.service,
            credentials=(desired.account, secret),
            hub=self._hub(namespace, desired.service.name),
            git_token=token,
            beside=beside,
        )

    async def _remove(
        self, sup: Supervisor, *, keep_source: bool = False, forget: bool = True
    ) -> None:
        """Stop a service; with ``forget``, also its record, account, files and logs."""
        ns, svc = sup.namespace, sup.service
        key = (ns, svc.name, svc.version)
        rollout = self._rollouts.pop(key, None)
        if rollout is not None:
            await rollout.cancel()
        await sup.stop()
        await sup.drop_work()
        self._running.pop(key, None)
        self._published.pop(key, None)
        if forget:
            await self._forget(ns, svc, keep_source=keep_source)
            await self._drop_files(*key, keep_source=keep_source)

    async def _forget(self, namespace: str, svc: Service, *, keep_source: bool = False) -> None:
        """Drop what the store keeps of a service: its record, status, account, upload."""
        await self._records.forget(namespace, svc)
        with contextlib.suppress(errors.NotFound):
            await self._auth.delete_account(_account_id(svc), namespace=namespace)
        if not keep_source:
            await archives.delete(self._store, namespace, svc.name, svc.version)
            await self._uploads.drop_staged(namespace, svc)

    async def _drop_files(
        self, namespace: str, name: str, version: str, *, keep_source: bool = False
    ) -> None:
        """Drop what this replica's disk holds of a service: work folder, logs, upload."""
        layout = self._layout
        for folder in (
            layout.work(namespace, name, version),
            layout.logs(namespace, name, version),
        ):
            await asyncio.to_thread(shutil.rmtree, folder, True)
        if not keep_source:
            with contextlib.suppress(FileNotFoundError):
                layout.archive(namespace, name, version).unlink()
        if not any(k[0] == namespace and k[1] == name for k in self._running):
            hub = self._hubs.pop((namespace, name), None)
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


def _account_id(service: Service) -> str:
    version = re.sub(r"[^A-Za-z0-9._-]", "-", service.version)
    return f"{service.name}-{version}"
