"""``micro run``, ``update``, ``kill``, ``status`` and ``logs``: services from source.

``micro run <folder>`` packs the folder and uploads it through ``runtime.Source``, so it
works the same against a remote server; ``micro run <git-url>[@ref]`` lets the server
clone it. Either way the command waits, showing the build's progress, until the service
is running (registered) or has failed, and then says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from micro.cli._client import Session, run_with_client
from micro.cli._format import table
from micro.cli.errors import CliError
from micro.cli.main import MicroCommand
from micro.durations import ago

if TYPE_CHECKING:
    from micro.runtime.base import Service
    from micro.runtime.client import RPCRuntime

__all__ = ["kill", "logs", "run", "status", "update"]

_POLL = 0.1
"""How often the CLI asks for the status while it waits for a service to come up."""

_WATCH_DEBOUNCE_MS = 1000


@dataclass(frozen=True)
class _Source:
    """What ``micro run`` was given: a local folder (the repository it is in is sent,
    the service runs in its folder), or a git URL with its ref and folder."""

    text: str
    """What ``micro status`` shows: as typed, a folder relative to its repository."""
    name: str
    version: str
    folder: Path | None
    """The folder to pack: the repository's root when the service is in one."""
    url: str
    """The canonical git source (``url[//folder][@ref]``), for a git source."""
    subfolder: str = ""
    """The service's folder inside the packed ``folder``."""
    parts: tuple[Path, ...] = ()
    """What to pack of ``folder`` (the service's folder and its local packages); all of
    it when empty."""


def _repository_of(folder: Path) -> Path | None:
    """The root of the git work tree ``folder`` is in, if any (no git needed)."""
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _short_name(text: str) -> str:
    """``helloworld@v1`` as ``<git.baseurl>/helloworld@v1`` when ``git.baseurl`` is set
    (the environment's own ``git.<env>.baseurl`` first), as in Micro; else ``text``."""
    from micro.cli._client import user_config

    if "/" in text or ":" in text or not text.strip():
        return text
    cfg = user_config()
    env = cfg.get("env")
    base = (isinstance(env, str) and cfg.get(f"git.{env}.baseurl")) or cfg.get("git.baseurl")
    if not isinstance(base, str) or not base.strip():
        return text
    return f"{base.strip().rstrip('/')}/{text.strip()}"


def _source(text: str, name: str | None) -> _Source:
    from micro.runtime.source import SourceError, parse_git, service_name

    folder = Path(text).expanduser()
    if folder.is_dir():
        resolved = folder.resolve()
        default = name or service_name(str(resolved))
        repo = _repository_of(resolved)
        if repo is None or repo == resolved:
            return _Source(text, default, "latest", folder, "")
        sub = resolved.relative_to(repo).as_posix()
        packages = _local_packages(resolved, repo)
        if not packages:  # nothing shared: the folder alone, shown as in the repository
            return _Source(sub, default, "latest", folder, "")
        return _Source(sub, default, "latest", repo, "", sub, (resolved, *packages))
    try:
        git = parse_git(_short_name(text))
    except SourceError as exc:
        raise CliError(str(exc), 1) from None
    if git is None:
        what = "is not a folder" if folder.exists() else "does not exist"
        hint = "" if "/" in text else " (set git.baseurl to run short names: micro user config)"
        raise CliError(f"Folder {text} {what}, and it is not a git URL{hint}", 1)
    shown = text if git.url in text else str(git)
    return _Source(shown, name or service_name(str(git)), git.ref or "latest", None, str(git))


def _local_packages(folder: Path, repo: Path) -> list[Path]:
    """The repository's folders the service's requirements name as local packages."""
    from micro.runtime.build import BuildError, dependencies

    try:
        return dependencies(folder, repo)[1]
    except BuildError as exc:
        raise CliError(f"Cannot read the requirements of {folder}: {exc}", 1) from None


def _flat(value: object, prefix: str = "") -> dict[str, object]:
    """A nested config object as dotted keys: ``git.credentials.github.com`` is kept as
    ``{"github": {"com": ...}}`` (dots are the path's separator)."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    flat: dict[str, object] = {}
    for key, inner in value.items():
        flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _git_token(src: _Source) -> str:
    """The token for a private repository: ``git.credentials.<host>``, else
    ``git.credentials.token`` when ``git.credentials.url`` is this repository's host (or
    is not set). Read from the CLI's config; sent to the server with the run."""
    from micro.cli._client import user_config
    from micro.runtime.repos import host_of

    if src.folder is not None:
        return ""
    host = host_of(src.url)
    if not host:
        return ""
    creds = _flat(user_config().get("git.credentials"))
    token = creds.get(host)
    if isinstance(token, str) and token:
        return token
    url = creds.get("url")
    token = creds.get("token")
    if isinstance(token, str) and token:
        wanted = host_of(url if "://" in url else f"https://{url}") if isinstance(url, str) else ""
        if not wanted or wanted == host:
            return token
    return ""


def _env_vars(values: tuple[str, ...]) -> dict[str, str]:
    """``--env_vars a=1,b=2`` (repeatable) as a dict."""
    env: dict[str, str] = {}
    for value in values:
        for pair in value.split(","):
            key, sep, val = pair.partition("=")
            if not sep or not key.strip():
                raise CliError(f"Invalid --env_vars entry {pair!r}: expected KEY=VALUE", 1)
            env[key.strip()] = val
    return env


def _pack(folder: Path, parts: tuple[Path, ...]) -> bytes:
    from micro.runtime.source import SourceError, pack

    try:
        return pack(folder, parts=list(parts) or None)
    except SourceError as exc:
        raise CliError(str(exc), 1) from None


async def _upload(runtime: RPCRuntime, src: _Source, *, staged: bool = False) -> str:
    """The service's source id on the server: the folder uploaded (``staged``: kept apart
    until a rolling update succeeded), or the git URL."""
    if src.folder is None:
        return src.url
    from micro.runtime.rollout import staged_version

    data = await asyncio.to_thread(_pack, src.folder, src.parts)
    version = staged_version(src.version) if staged else src.version
    source_id = await runtime.upload(src.name, version, data, namespace="micro")
    return source_id + (f"//{src.subfolder}" if src.subfolder else "")


def _progress() -> Callable[[str], None]:
    """Progress: one line on stderr redrawn in place on a terminal; otherwise (CI logs)
    a line on stdout for each change."""
    if not sys.stderr.isatty():
        last = [""]

        def line(text: str) -> None:
            if text and text != last[0]:
                click.echo(text)
            last[0] = text

        return line
    from rich.console import Console

    status = Console(stderr=True).status("")
    status.start()

    def show(text: str) -> None:
        if text:
            status.update(text)
        else:
            status.stop()

    return show


async def _read_one(runtime: RPCRuntime, name: str, version: str) -> Service:
    """The service being waited for; CliError when it is gone (killed meanwhile)."""
    found = await runtime.read(name=name, version=version)
    if not found:
        raise CliError(f"Service {name} is gone: it was killed meanwhile", 1)
    return found[0]


async def _wait_running(runtime: RPCRuntime, name: str, version: str) -> Service:
    """Poll until the service runs or fails; show its progress meanwhile."""
    show = _progress()
    try:
        while True:
            svc = await _read_one(runtime, name, version)
            if svc.status == "running":
                return svc
            if svc.status in ("error", "stopped"):
                reason = svc.metadata.get("error", svc.status)
                raise CliError(f"Service {name} failed: {reason}", 1)
            detail = svc.metadata.get("progress", "")
            show(f"{name}: {svc.status}" + (f" ({detail})" if detail else ""))
            await asyncio.sleep(_POLL)
    finally:
        show("")


async def _wait_rolled(runtime: RPCRuntime, name: str, version: str) -> Service:
    """Poll until a rolling update is over; CliError with its reason when it failed (the
    old version still serves)."""
    show = _progress()
    try:
        while True:
            svc = await _read_one(runtime, name, version)
            updating = svc.metadata.get("updating", "")
            if not updating:
                break
            show(f"{name}: updating ({updating})")
            await asyncio.sleep(_POLL)
    finally:
        show("")
    if "update_error" in svc.metadata:
        raise CliError(
            f"Update of {name} failed, the previous version still serves: "
            + svc.metadata["update_error"],
            1,
        )
    return await _wait_running(runtime, name, version)


def _service(
    src: _Source, source_id: str, instances: int, env: dict[str, str], meta: dict[str, str]
) -> Service:
    from micro.runtime.base import Service

    return Service(
        name=src.name,
        version=src.version,
        source=source_id,
        metadata={"source": src.text, **meta},
        instances=instances,
        env=env,
    )


_run_options = [
    click.argument("source"),
    click.option("--name", help="Service name (default: the folder's or repository's name)."),
    click.option(
        "-i", "--instances", type=click.IntRange(1, 64), default=None, help="Processes to run (1)."
    ),
    click.option(
        "--env_vars",
        multiple=True,
        help="Environment variables for the service: KEY=VALUE[,KEY=VALUE] (repeatable).",
    ),
    click.option("--metadata", multiple=True, help="KEY=VALUE metadata (repeatable)."),
]


def _with_run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_run_options):
        fn = option(fn)
    return fn


def _metadata(values: tuple[str, ...]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise CliError(f"Invalid --metadata {value!r}: expected KEY=VALUE", 1)
        meta[key] = val
    return meta


@click.command("run", cls=MicroCommand)
@_with_run_options
@click.option("--force", is_flag=True, help="Replace the service if it already runs.")
@click.option("--watch", is_flag=True, help="Rebuild and restart when the folder's files change.")
def run(
    source: str,
    name: str | None,
    instances: int | None,
    env_vars: tuple[str, ...],
    metadata: tuple[str, ...],
    force: bool,
    watch: bool,
) -> None:
    """Run a service from a local folder or a git URL[@ref]; wait until it is running."""
    src = _source(source, name)
    env, meta = _env_vars(env_vars), _metadata(metadata)
    if watch and src.folder is None:
        raise CliError("--watch works with a local folder only", 1)

    token = _git_token(src)

    async def body(session: Session) -> None:
        from micro.runtime.client import RPCRuntime

        runtime = RPCRuntime(session.client)
        existing = await _read_logged_in(session, runtime, src)
        if not force and any(s.status not in ("error", "stopped") for s in existing):
            raise CliError(
                f"Service {src.name} ({src.version}) is already running: "
                "use --force to replace it, or 'micro update'",
                1,
            )
        source_id = await _upload(runtime, src)
        service = _service(src, source_id, instances or 1, env, meta)
        await runtime.create(service, force=force, git_token=token)
        try:
            await _wait_running(runtime, src.name, src.version)
        except CliError:
            if not existing:  # a name that never ran leaves no row in error behind
                with contextlib.suppress(Exception):
                    await runtime.delete(src.name, version=src.version)
            raise
        if watch:
            await _watch(runtime, src)

    run_with_client(body)


async def _read_logged_in(session: Session, runtime: RPCRuntime, src: _Source) -> list[Service]:
    """The service's current rows; a refusal for want of a login says to log in."""
    from micro import errors

    try:
        return await runtime.read(name=src.name, version=src.version)
    except (errors.Unauthorized, errors.Forbidden):
        if session.credentials.current() is None:
            raise CliError("You are not logged in: run 'micro login' first", 2) from None
        raise


async def _watch(runtime: RPCRuntime, src: _Source) -> None:
    """Re-upload and restart on every change of the folder's files, until Ctrl-C."""
    from watchfiles import awatch

    from micro.runtime.source import EXCLUDED

    assert src.folder is not None

    def wanted(_change: object, path: str) -> bool:
        parts = Path(path).relative_to(src.folder.resolve()).parts  # type: ignore[union-attr]
        return not any(p in EXCLUDED or p.endswith((".pyc", ".egg-info")) for p in parts)

    click.echo(f"Watching {src.folder} for changes (Ctrl-C to stop watching)", err=True)
    async for _ in awatch(src.folder.resolve(), watch_filter=wanted, debounce=_WATCH_DEBOUNCE_MS):
        click.echo(f"Files changed: restarting {src.name}", err=True)
        source_id = await _upload(runtime, src, staged=True)
        from micro.runtime.base import Service

        await runtime.update(
            Service(name=src.name, version=src.version, source=source_id, instances=0)
        )
        try:
            await _wait_rolled(runtime, src.name, src.version)
        except CliError as exc:  # keep watching: the next save may fix it
            click.echo(exc.format_message(), err=True)


@click.command("update", cls=MicroCommand)
@_with_run_options
def update(
    source: str,
    name: str | None,
    instances: int | None,
    env_vars: tuple[str, ...],
    metadata: tuple[str, ...],
) -> None:
    """Rebuild a running service from its folder or git URL and roll it out: the old
    instances serve until the new ones run. ``micro update NAME[@VERSION] --instances N``
    only scales it, without a restart."""
    env, meta = _env_vars(env_vars), _metadata(metadata)
    scale = _scaling(source, instances, env, meta)
    src = _source(source, name) if scale is None else None
    token = _git_token(src) if src is not None else ""

    async def body(session: Session) -> None:
        from micro import errors
        from micro.runtime.base import Service
        from micro.runtime.client import RPCRuntime

        runtime = RPCRuntime(session.client)
        if scale is not None:
            svc_name, version = scale
            found = await runtime.read(name=svc_name, version=version)
            if not found:
                raise CliError(f'Service "{source}" not found: start it with micro run', 4)
            for svc in found:
                wanted = Service(name=svc.name, version=svc.version, instances=instances or 1)
                await runtime.update(wanted)
                await _wait_running(runtime, svc.name, svc.version)
            return
        assert src is not None
        if not await _read_logged_in(session, runtime, src):
            raise CliError(f'Service "{src.name}" not found: start it with micro run', 4)
        source_id = await _upload(runtime, src, staged=True)
        svc = _service(src, source_id, instances or 0, env, meta)
        try:
            await runtime.update(svc, git_token=token)
        except errors.NotFound:
            raise CliError(f'Service "{src.name}" not found', 4) from None
        await _wait_rolled(runtime, src.name, src.version)

    run_with_client(body)


def _scaling(
    source: str, instances: int | None, env: dict[str, str], meta: dict[str, str]
) -> tuple[str, str] | None:
    """``micro update NAME[@VERSION] --instances N`` (NAME not a folder, nothing else
    changed) scales the service: its name and version; None for an update."""
    if instances is None or env or meta or Path(source).expanduser().exists():
        return None
    name, _, version = source.partition("@")
    if not name or "/" in name or ":" in name:
        return None
    return name, version


def _name_version(text: str) -> tuple[str, str]:
    """``name[@version]``; ``.`` is the current folder's name."""
    name, _, version = text.partition("@")
    if name == ".":
        name = Path.cwd().name
    if not name:
        raise CliError(f"Invalid service {text!r}: expected NAME[@VERSION]", 1)
    return name, version


@click.command("kill", cls=MicroCommand)
@click.argument("services", nargs=-1, required=True)
def kill(services: tuple[str, ...]) -> None:
    """Stop services and forget them: NAME[@VERSION] (every version without one)."""

    async def body(session: Session) -> None:
        from micro import errors
        from micro.runtime.client import RPCRuntime

        runtime = RPCRuntime(session.client)
        for text in services:
            name, version = _name_version(text)
            try:
                await runtime.delete(name, version=version)
            except errors.NotFound:
                raise CliError(f'Service "{text}" not found', 4) from None

    run_with_client(body)


def _status_row(svc: Service) -> list[str]:
    meta = svc.metadata
    shown = [f"owner={meta.get('owner', 'n/a')}", f"group={meta.get('group', 'n/a')}"]
    if svc.instances > 1:
        shown.append(f"instances={svc.instances}")
    if meta.get("replica"):
        shown.append(f"replica={meta['replica']}")
    if svc.status == "pending" and meta.get("progress"):
        shown.append(f"note={meta['progress']}")
    if svc.status == "error" and meta.get("error"):
        lines = meta["error"].splitlines()
        shown.append("error=" + " | ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines))
    return [
        svc.name,
        svc.version,
        meta.get("source") or svc.source,
        svc.status,
        meta.get("build", "")[:7] or "n/a",
        ago(meta["started"]) if "started" in meta else "n/a",
        ", ".join(shown),
    ]


@click.command("status", cls=MicroCommand)
@click.argument("name", required=False, default="")
@click.argument("version", required=False, default="")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def status(name: str, version: str, output: str) -> None:
    """The services the runtime runs in this namespace, with their status."""

    async def body(session: Session) -> None:
        from micro.runtime.client import RPCRuntime

        found = await RPCRuntime(session.client).read(name=name, version=version)
        if output == "json":
            import msgspec

            for svc in found:
                click.echo(msgspec.json.encode(svc).decode())
            return
        if not found:
            return
        header = ["NAME", "VERSION", "SOURCE", "STATUS", "BUILD", "UPDATED", "METADATA"]
        for line in table([header, *(_status_row(s) for s in found)]):
            click.echo(line)

    run_with_client(body)


@click.command("logs", cls=MicroCommand)
@click.argument("service")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they come.")
@click.option("-n", "--lines", type=click.IntRange(0), default=15, show_default=True)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.option("--version", "version_opt", default="", help="Only this version's lines.")
def logs(service: str, follow: bool, lines: int, output: str, version_opt: str) -> None:
    """Print a service's logs: NAME[@VERSION]."""
    name, version = _name_version(service)
    version = version_opt or version

    async def body(session: Session) -> None:
        from micro import errors
        from micro.runtime.client import RPCRuntime

        stream = RPCRuntime(session.client).logs(name, version=version, count=lines, follow=follow)
        try:
            async with stream:
                async for record in stream:
                    if output == "json":
                        at = datetime.datetime.fromtimestamp(record.timestamp, tz=datetime.UTC)
                        click.echo(
                            json.dumps(
                                {
                                    "timestamp": at.isoformat().replace("+00:00", "Z"),
                                    "message": record.message,
                                    "metadata": record.metadata,
                                }
                            )
                        )
                    else:
                        click.echo(record.message)
        except errors.NotFound as exc:
            raise CliError(exc.detail or "Service not found", 4) from None

    run_with_client(body)
