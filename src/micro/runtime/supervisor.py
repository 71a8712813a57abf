"""One service's life on the local runtime: fetch, build, start its instances, watch them
register, restart a crashed one with backoff, stop them all.

An instance that dies before it ever registered fails the service at once, with its exit
code and last lines: a service that cannot start will not start on a second try either,
and retrying it would only hammer the machine. One that crashes after serving is
restarted after 1, 2, 4, ... seconds (at most 30), up to ``restart_limit`` times in a row;
a run longer than a minute resets the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final
from urllib.parse import quote

from micro import errors
from micro.registry.base import Node, Registry
from micro.registry.base import Service as RegistryService
from micro.runtime.base import LogRecord, Service
from micro.runtime.build import BuildError, Where, dependencies, ensure_venv, import_root
from micro.runtime.entrypoint import Entrypoint, find_entrypoint
from micro.runtime.logs import LogFile, LogHub
from micro.runtime.process import Instance, Launch, describe_exit
from micro.runtime.repos import RepoCache
from micro.runtime.sandbox import Place, Sandbox, SandboxError
from micro.runtime.source import SourceError, parse_git, split_upload, unpack
from micro.wire.transport import parse_address

__all__ = ["Layout", "Platform", "Supervisor"]

log = logging.getLogger("micro.runtime")

_STABLE: Final = 60.0
"""A run this long resets an instance's count of restarts in a row."""

_MAX_BACKOFF: Final = 30.0

_PASSED_THROUGH: Final = (
    "MICRO_LOG_LEVEL",
    "MICRO_LOG_FORMAT",
    "MICRO_REGISTER_TTL",
    "MICRO_REGISTER_INTERVAL",
    "MICRO_TRACE_SAMPLE",
    "MICRO_OTLP_ENDPOINT",
)
"""The server's own ``MICRO_*`` variables a service inherits; the rest (its stores'
addresses, the admin password) are the server's business only."""

_REGISTERED_POLL: Final = 0.05

DRAIN_DELAY: Final = "0.5"
"""``MICRO_DRAIN_DELAY`` of the runtime's services: how long a stopping instance keeps
serving after it deregistered, while the proxies stop routing to it (a rolling update
then fails no call)."""


def _part(text: str) -> str:
    """A name or version as one safe path element (versions may hold ``/``)."""
    return quote(text, safe="") or "_"


@dataclass(frozen=True)
class Layout:
    """Where a runtime keeps things, under one folder."""

    root: Path

    def archive(self, namespace: str, name: str, version: str) -> Path:
        """An uploaded folder's archive."""
        return self.root / "sources" / _part(namespace) / _part(name) / f"{_part(version)}.tar.gz"

    def work(self, namespace: str, name: str, version: str) -> Path:
        """The unpacked or cloned source a service runs in."""
        return self.root / "work" / _part(namespace) / _part(name) / _part(version)

    def logs(self, namespace: str, name: str, version: str) -> Path:
        """The folder of a service's log files."""
        return self.root / "logs" / _part(namespace) / _part(name) / _part(version)

    def pids(self, namespace: str, name: str, version: str) -> Path:
        """The folder of a service's pid files."""
        return self.root / "pids" / _part(namespace) / _part(name) / _part(version)

    def home(self, namespace: str, name: str) -> Path:
        """A service's own ``MICRO_HOME`` (never the server's: keys and tokens live there)."""
        return self.root / "homes" / _part(namespace) / _part(name)

    def venvs(self, namespace: str) -> Path:
        """A namespace's virtualenvs, one per set of dependencies (built by its user)."""
        return self.root / "venvs" / _part(namespace)

    def cache(self, namespace: str) -> Path:
        """The home of a namespace's builds: the installers' caches."""
        return self.root / "cache" / _part(namespace)

    def repos(self) -> Path:
        """The git clones of every namespace (see :mod:`micro.runtime.repos`)."""
        return self.root / "repos"


@dataclass
class Platform:
    """What every supervisor shares: where things go, the registry, the proxy address."""

    layout: Layout
    registry: Registry
    builds: asyncio.Semaphore
    sandbox: Sandbox
    """Where and as whom the processes run (see :mod:`micro.runtime.sandbox`)."""
    repos: RepoCache | None = None
    """Where git sources are fetched once per ref (default: under the layout's root)."""
    replica: str = "local"
    """The replica that runs these services: their node ids carry it, so whoever adopts
    them after this replica is gone knows which nodes were left behind."""
    proxy: str = ""
    grace: float = 10.0
    restart_limit: int = 5


class _Slot:
    """One instance slot (0, 1, ...): the process currently filling it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.node_id = ""
        self.registered = False
        self.instance: Instance | None = None
        self.task: asyncio.Task[None] | None = None
        self.retired = False
        """Scaled away: its process is stopped and not restarted."""


class Supervisor:
    """Brings one service (name and version in a namespace) up and keeps it up."""

    def __init__(
        self,
        platform: Platform,
        namespace: str,
        service: Service,
        *,
        credentials: tuple[str, str],
        hub: LogHub,
        git_token: str = "",
        beside: bool = False,
    ) -> None:
        self.platform = platform
        self.namespace = namespace
        self.service = service
        self.generation = uuid.uuid4().hex[:8]
        """This run's own work folder and pid files: during a rolling update the old
        and the new run side by side."""
        self._git_token = git_token
        self._launch_spec: Launch | None = None
        self.state = "pending"
        self.error = ""
        self.progress = ""
        self.build = ""
        self._credentials = credentials
        self._hub = hub
        self._slots: list[_Slot] = []
        self._task: asyncio.Task[None] | None = None
        self._cleanup: asyncio.Task[None] | None = None
        self._launched = asyncio.Event()
        """Set when an instance's process starts: the registration watch wakes up."""
        self._stopping = False
        layout = platform.layout
        self._work = layout.work(namespace, service.name, service.version) / self.generation
        self._pids = layout.pids(namespace, service.name, service.version)
        self._pid_suffix = f"-{self.generation}" if beside else ""
        """A run started beside another (a rolling update's new version) names its pid
        files apart."""
        logs = layout.logs(namespace, service.name, service.version)
        self._build_log = LogFile(logs / "build.log")
        self._logs = logs

    # -- what the runtime shows ---------------------------------------------------------

    @property
    def status(self) -> str:
        """The live status (see :mod:`micro.runtime.base`)."""
        if self.state != "started":
            return self.state
        if self._slots and all(s.registered for s in self._slots):
            return "running"
        return "starting"

    def describe(self) -> Service:
        """The service with its live status and metadata."""
        metadata = dict(self.service.metadata)
        if self.build:
            metadata["build"] = self.build
        if self.error:
            metadata["error"] = self.error
        if self.progress and self.state in ("pending", "building"):
            metadata["progress"] = self.progress
        return Service(
            name=self.service.name,
            version=self.service.version,
            source=self.service.source,
            metadata=metadata,
            status=self.status,
            instances=self.service.instances,
            env=self.service.env,
        )

    def log_files(self) -> list[Path]:
        """The build log and every instance's log."""
        return [self._logs / "build.log"] + [
            self._logs / f"{i}.log" for i in range(self.service.instances)
        ]

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Fetch, build and start, in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        platform, namespace, svc = self.platform, self.namespace, self.service
        layout, sandbox = platform.layout, platform.sandbox
        try:
            sandbox.check(namespace)
            async with platform.builds:
                self._set("building")
                work, folder = await self._fetch()
                await sandbox.hand_over(namespace, work, tree=True)
                home = layout.home(namespace, svc.name)
                place = Place(app=work, home=home, venv=work, folder=folder)
                seen = sandbox.seen(place)
                code = place.cwd
                if not code.is_dir():
                    raise SourceError(f"folder {folder!r} not found in the source")
                entry = find_entrypoint(code, name=svc.name, seen_as=seen.cwd)
                _, packages = dependencies(code, work)
                shared = _shared_paths(work, folder, packages, seen.app)
                cache = layout.cache(namespace)
                await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
                where = Where(sandbox, namespace, cache)
                built = await ensure_venv(
                    code, layout.venvs(namespace), log=self._build_line, where=where, root=work
                )
                self.build = built.key
            await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True, mode=0o700)
            await sandbox.hand_over(namespace, home)
            self._note(f"starting {svc.instances} instance(s): {entry.description}")
            svc.metadata["entrypoint"] = entry.description
            self._slots = [_Slot(i) for i in range(svc.instances)]
            self._set("started")
            launch = self._launch(
                Place(app=work, home=home, venv=built.python.parent.parent, folder=folder),
                entry,
                shared,
            )
            self._launch_spec = launch
            for slot in self._slots:
                slot.task = asyncio.get_running_loop().create_task(self._keep(slot, launch))
            await self._watch_registrations()
        except (SourceError, BuildError, SandboxError) as exc:
            self._fail(str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must show as an error status, not vanish
            log.exception("runtime: %s failed", self.service.name)
            self._fail(f"internal error: {exc}")

    async def _fetch(self) -> tuple[Path, str]:
        """The service's source on disk, in this run's own folder (unpacked from its
        upload, or copied from the cached clone of its repository), and the folder of
        it the service is in."""
        layout = self.platform.layout
        svc = self.service
        work = self._work
        fresh = work.with_name(f".{work.name}.new-{uuid.uuid4().hex[:8]}")
        fresh.parent.mkdir(parents=True, exist_ok=True)
        try:
            if svc.source.startswith("source://"):
                self._note(f"unpacking {svc.source}")
                base, folder = split_upload(svc.source)
                uploaded = base.rpartition(":")[2]  # the version, or an update's staged one
                archive = layout.archive(self.namespace, svc.name, uploaded)
                try:
                    data = await asyncio.to_thread(archive.read_bytes)
                except FileNotFoundError:
                    raise SourceError(f"no uploaded source for {svc.source}") from None
                await asyncio.to_thread(unpack, data, fresh)
            else:
                git = parse_git(svc.source)
                if git is None:
                    raise SourceError(f"unknown source {svc.source!r}")
                folder = git.folder
                self._note(f"fetching {svc.source}")
                repos = self.platform.repos or RepoCache(layout.repos())
                commit = await repos.checkout(self.namespace, git, fresh, token=self._git_token)
                self.service.metadata["commit"] = commit
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, fresh, True)
            raise
        await asyncio.to_thread(shutil.rmtree, work, True)
        fresh.rename(work)
        return work, folder

    def _launch(self, place: Place, entry: Entrypoint, shared: list[str]) -> Launch:
        svc = self.service
        seen = self.platform.sandbox.seen(place)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
        env.update({k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ})
        env["MICRO_SERVICE_ADDRESS"] = _service_address(self.platform.proxy)
        env.update(svc.env)
        env.update(entry.env)
        if shared:
            paths = [*env.get("PYTHONPATH", "").split(os.pathsep), *shared]
            env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
        account, secret = self._credentials
        venv_bin = seen.venv / "bin"
        env.update(
            {
                "MICRO_PROXY": self.platform.proxy,
                "MICRO_SERVICE_NAME": svc.name,
                "MICRO_SERVICE_VERSION": svc.version,
                "MICRO_NAMESPACE": self.namespace,
                "MICRO_AUTH_ID": account,
                "MICRO_AUTH_SECRET": secret,
                "MICRO_HOME": str(seen.home),
                "MICRO_RUNTIME_PARENT": str(os.getpid()),
                "PYTHONUNBUFFERED": "1",
                "MICRO_DRAIN_DELAY": os.environ.get("MICRO_DRAIN_DELAY", DRAIN_DELAY),
                "VIRTUAL_ENV": str(venv_bin.parent),
                "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', os.defpath)}",
            }
        )
        argv = [str(venv_bin / "python"), *entry.argv]
        return Launch(argv, env, place, self.namespace, self.platform.sandbox)

    async def _keep(self, slot: _Slot, launch: Launch) -> None:
        """Keep one slot filled: start, wait, and restart with backoff."""
        loop = asyncio.get_running_loop()
        svc = self.service
        restarts = 0
        ever_registered = False
        logfile = LogFile(self._logs / f"{slot.index}.log")
        label = str(slot.index)

        def sink(record: LogRecord) -> None:
            record.metadata["version"] = svc.version
            logfile.write(record)
            self._hub.publish(record)

        pids = self._pids
        try:
            while True:
                slot.node_id = f"{svc.name}-{self.platform.replica}-{uuid.uuid4().hex[:16]}"
                slot.registered = False
                env = dict(launch.env, MICRO_SERVICE_ID=slot.node_id)
                instance = Instance(label, pids / f"{slot.index}{self._pid_suffix}.pid", sink)
                slot.instance = instance
                began = loop.time()
                try:
                    await instance.start(replace(launch, env=env))
                except (OSError, ValueError, SandboxError) as exc:
                    slot.instance = None
                    self._fail(f"cannot start instance {label}: {exc}")
                    return
                self._launched.set()
                code = await instance.wait()
                ever_registered = ever_registered or slot.registered
                slot.registered = False
                await self._deregister(slot.node_id)
                if self._stopping or slot.retired:
                    return
                how = describe_exit(code)
                last = "\n".join(instance.last_lines)
                if not ever_registered:
                    self._fail(f"instance {label} {how} before it was running" + _tail(last))
                    return
                if loop.time() - began > _STABLE:
                    restarts = 0
                restarts += 1
                if restarts > self.platform.restart_limit:
                    self._fail(f"instance {label} {how} {restarts} times in a row" + _tail(last))
                    return
                delay = min(2.0 ** (restarts - 1), _MAX_BACKOFF)
                self._note(f"instance {label} {how}; restarting in {delay:.0f}s")
                await asyncio.sleep(delay)
        finally:
            logfile.close()

    async def _watch_registrations(self) -> None:
        """Mark instances registered as their nodes appear (the only honest "running")."""
        svc = self.service
        while not self._stopping and self.state == "started":
            pending = [s for s in self._slots if not s.registered and s.node_id]
            if not pending:
                # every instance is registered: sleep until one is started again
                self._launched.clear()
                await self._launched.wait()
                continue
            try:
                records = await self.platform.registry.get_service(svc.name, domain=self.namespace)
            except errors.NotFound:
                records = []
            nodes = {n.id for r in records if r.version == svc.version for n in r.nodes}
            for slot in pending:
                if slot.node_id in nodes:
                    slot.registered = True
                await asyncio.sleep(_REGISTERED_POLL)

    async def _deregister(self, node_id: str) -> None:
        """Drop a dead process's node at once, rather than after its TTL."""
        record = RegistryService(
            name=self.service.name,
            version=self.service.version,
            nodes=[Node(id=node_id, address="")],
        )
        with contextlib.suppress(errors.MicroError):
            await self.platform.registry.deregister(record, domain=self.namespace)

    async def scale(self, instances: int) -> None:
        """Run ``instances`` processes, without restarting any that runs: new slots are
        started, or the last ones stopped (drained as in a rolling update)."""
        self.service.instances = instances
        launch = self._launch_spec
        if self.state != "started" or launch is None:
            return  # not started yet: it starts as many as the service says
        loop = asyncio.get_running_loop()
        while len(self._slots) < instances:
            slot = _Slot(len(self._slots))
            self._slots.append(slot)
            slot.task = loop.create_task(self._keep(slot, launch))
        self._launched.set()
        extra = self._slots[instances:]
        del self._slots[instances:]
        for slot in extra:
            slot.retired = True
        await asyncio.gather(
            *(s.instance.stop(self.platform.grace) for s in extra if s.instance is not None)
        )
        await asyncio.gather(*(s.task for s in extra if s.task is not None), return_exceptions=True)
        self._note(f"scaled to {instances} instance(s)")

    async def retire(self) -> None:
        """Stop (see :meth:`stop`) and drop this run's work folder."""
        await self.stop()
        await self.drop_work()

    async def drop_work(self) -> None:
        """Drop this run's own work folder (once it is stopped)."""
        await asyncio.to_thread(shutil.rmtree, self._work, True)

    async def stop(self) -> None:
        """Stop every instance (SIGTERM, SIGKILL after the grace period) and the build."""
        self._stopping = True
        was_error = self.state == "error"
        self._set("stopping")
        await self._stop_instances()
        tasks = [t for t in [self._task, *(s.task for s in self._slots)] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._build_log.close()
        self._set("error" if was_error else "stopped")

    # -- state --------------------------------------------------------------------------

    def _set(self, state: str) -> None:
        self.state = state

    def _note(self, line: str) -> None:
        """A line of the runtime's own about this service, in its build log."""
        self.progress = line
        record = LogRecord(
            time.time(), line, {"instance": "build", "version": self.service.version}
        )
        self._build_log.write(record)
        self._hub.publish(record)

    def _build_line(self, line: str) -> None:
        self._note(line)

    def _fail(self, reason: str) -> None:
        self.error = reason
        self._note(f"error: {reason}")
        self._set("error")
        if not self._stopping:
            # the other instances go too: a service in error does not half-run
            self._cleanup = asyncio.get_running_loop().create_task(self._stop_instances())

    async def _stop_instances(self) -> None:
        self._stopping = True
        await asyncio.gather(
            *(
                slot.instance.stop(self.platform.grace)
                for slot in self._slots
                if slot.instance is not None
            )
        )


def _service_address(proxy: str) -> str:
    """Where a service listens: on the host its server's proxy is reached at, so a
    replica bound to its host's address (``--proxy_address 10.0.0.5:8081``) runs services
    the other hosts of the cluster can call."""
    try:
        where = parse_address(proxy)
    except ValueError:
        return "127.0.0.1:0"
    if where.path or not where.host:
        return "127.0.0.1:0"
    host = f"[{where.host}]" if ":" in where.host else where.host
    return f"{host}:0"


def _shared_paths(work: Path, folder: str, packages: list[Path], seen_app: Path) -> list[str]:
    """``PYTHONPATH`` entries, as the process sees them, that make a repository's shared
    code importable by a service in one of its folders: the local packages it depends
    on, the root's ``src/`` and the root itself. None for a service at the root."""
    work = work.resolve()
    roots = [import_root(p) for p in packages]
    if folder:
        roots = [*roots, *([work / "src"] if (work / "src").is_dir() else []), work]
    return [str(seen_app / p.relative_to(work)) for p in roots]


def _tail(lines: str) -> str:
    return f"; its last lines:\n{lines}" if lines else ""
