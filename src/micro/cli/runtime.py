"""``micro run``, ``update``, ``kill``, ``status`` and ``logs``: services from source.

``micro run <folder>`` packs the folder and uploads it through ``runtime.Source``, so it
works the same against a remote server; ``micro run <git-url>[@ref]`` lets the server
clone it. Either way the command waits, showing the build's progress, until the service
is running (registered) or has failed, and then says why.
"""

from __future__ import annotations

import asyncio
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
    """What ``micro run`` was given: a local folder, or a git URL with its ref."""

    text: str
    name: str
    version: str
    folder: Path | None
    url: str


def _source(text: str, name: str | None) -> _Source:
    from micro.runtime.source import SourceError, parse_git, service_name

    folder = Path(text).expanduser()
    if folder.is_dir():
        return _Source(text, name or service_name(str(folder.resolve())), "latest", folder, "")
    try:
        git = parse_git(text)
    except SourceError as exc:
        raise CliError(str(exc), 1) from None
    if git is None:
        what = "is not a folder" if folder.exists() else "does not exist"
        raise CliError(f"Folder {text} {what}, and it is not a git URL", 1)
    return _Source(text, name or service_name(text), git.ref or "latest", None, git.url)


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


def _pack(folder: Path) -> bytes:
    from micro.runtime.source import SourceError, pack

    try:
        return pack(folder)
    except SourceError as exc:
        raise CliError(str(exc), 1) from None


async def _upload(runtime: RPCRuntime, src: _Source) -> str:
    """The service's source id on the server: the folder uploaded, or the git URL."""
    if src.folder is None:
        return f"{src.url}@{src.version}" if src.version != "latest" else src.url
    data = await asyncio.to_thread(_pack, src.folder)
    return await runtime.upload(src.name, src.version, data, namespace="micro")


def _progress() -> Callable[[str], None]:
    """A one-line progress display on stderr (only on a terminal)."""
    if not sys.stderr.isatty():
        return lambda text: None
    from rich.console import Console

    status = Console(stderr=True).status("")
    status.start()

    def show(text: str) -> None:
        if text:
            status.update(text)
        else:
            status.stop()

    return show


async def _wait_running(runtime: RPCRuntime, name: str, version: str) -> Service:
    """Poll until the service runs or fails; show its progress meanwhile."""
    show = _progress()
    try:
        while True:
            found = await runtime.read(name=name, version=version)
            if not found:
                raise CliError(f"Service {name} is gone: it was killed meanwhile", 1)
            svc = found[0]
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

    async def body(session: Session) -> None:
        from micro.runtime.client import RPCRuntime

        runtime = RPCRuntime(session.client)
        existing = await runtime.read(name=src.name, version=src.version)
        if not force and any(s.status not in ("error", "stopped") for s in existing):
            raise CliError(
                f"Service {src.name} ({src.version}) is already running: "
                "use --force to replace it, or 'micro update'",
                1,
            )
        source_id = await _upload(runtime, src)
        await runtime.create(_service(src, source_id, instances or 1, env, meta), force=force)
        await _wait_running(runtime, src.name, src.version)
        if watch:
            await _watch(runtime, src)

    run_with_client(body)


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
        source_id = await _upload(runtime, src)
        from micro.runtime.base import Service

        await runtime.update(
            Service(name=src.name, version=src.version, source=source_id, instances=0)
        )
        try:
            await _wait_running(runtime, src.name, src.version)
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
    """Rebuild a running service from its folder or git URL and restart it."""
    src = _source(source, name)
    env, meta = _env_vars(env_vars), _metadata(metadata)

    async def body(session: Session) -> None:
        from micro import errors
        from micro.runtime.client import RPCRuntime

        runtime = RPCRuntime(session.client)
        if not await runtime.read(name=src.name, version=src.version):
            raise CliError(f'Service "{src.name}" not found: start it with micro run', 4)
        source_id = await _upload(runtime, src)
        svc = _service(src, source_id, instances or 0, env, meta)
        try:
            await runtime.update(svc)
        except errors.NotFound:
            raise CliError(f'Service "{src.name}" not found', 4) from None
        await _wait_running(runtime, src.name, src.version)

    run_with_client(body)


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
