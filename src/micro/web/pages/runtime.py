"""Runtime: what ``micro status`` shows, ``micro run`` from a git URL, ``update``, ``kill``
and ``logs`` (with a live tail), all through the ``runtime`` service as the logged-in
account: reading needs an account of the namespace, everything else an admin of it, and a
refusal is the platform's 403 page.

The dashboard runs services from git only: ``micro run <folder>`` packs a folder of the
user's machine, which a web page cannot read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from micro import errors
from micro.durations import ago
from micro.runtime.base import LogRecord, Service
from micro.runtime.source import SourceError, parse_git, service_name
from micro.web.app import Context, page
from micro.web.platform import Caller
from micro.web.sse import END, event_stream, resume_from, sse

__all__ = ["ROUTES"]

LOG_LINES: Final = 200
"""The last lines the logs page shows (the tail follows from there)."""
_BUSY: Final = frozenset({"pending", "building", "starting", "stopping"})
_WHERE: Final = "micro.web"


@dataclass(frozen=True, slots=True)
class Row:
    """A service as a row of the status table (the columns of ``micro status``)."""

    service: Service
    source: str
    build: str
    updated: str
    metadata: str
    error: str


def _row(svc: Service) -> Row:
    meta = svc.metadata
    shown = [f"owner={meta.get('owner', 'n/a')}", f"group={meta.get('group', 'n/a')}"]
    if svc.instances > 1:
        shown.append(f"instances={svc.instances}")
    if svc.env:
        shown.append("env=" + ",".join(sorted(svc.env)))  # names only: values may be secret
    return Row(
        service=svc,
        source=meta.get("source") or svc.source,
        build=meta.get("build", "")[:7] or "n/a",
        updated=ago(meta["started"]) if "started" in meta else "n/a",
        metadata=", ".join(shown),
        error=meta.get("error", "") if svc.status == "error" else "",
    )


async def _services(caller: Caller, name: str = "", version: str = "") -> list[Service]:
    answer = await caller.call("runtime", "Runtime.Read", {"service": name, "version": version})
    return msgspec.convert(answer.get("services") or [], list[Service])


async def _status(context: Context, *, status: int = 200, **values: Any) -> Response:
    rows = [_row(svc) for svc in await _services(context.caller)]
    busy = any(row.service.status in _BUSY for row in rows)
    return context.render("runtime.html", status, rows=rows, busy=busy, **values)


async def status_page(context: Context) -> Response:
    """``/runtime``: the status table and the Run form."""
    return await _status(context, form={})


async def status_table(context: Context) -> Response:
    """``/runtime/table``: the status table alone, which the page polls while a service
    is on its way (building, starting ...)."""
    rows = [_row(svc) for svc in await _services(context.caller)]
    busy = any(row.service.status in _BUSY for row in rows)
    return context.render("runtime_table.html", rows=rows, busy=busy)


def _env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines skipped)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise errors.BadRequest(_WHERE, f"invalid environment line {line!r}: use KEY=VALUE")
        env[key.strip()] = value
    return env


def _instances(text: str) -> int:
    try:
        return int(text or "1")
    except ValueError:
        raise errors.BadRequest(_WHERE, f"instances must be a number, not {text!r}") from None


def _service(form: FormData) -> Service:
    """The service the Run form asks for, as ``micro run <git-url>[@ref]`` makes it: the
    source id is the URL with its ref, the version the ref (or ``latest``), the name the
    repository's unless given."""
    text = str(form.get("source", "")).strip()
    try:
        git = parse_git(text)
        if git is None:
            raise SourceError(
                f"{text!r} is not a git URL (file://, https://, ssh:// or user@host:path, "
                "with an optional @ref): the dashboard cannot read local folders"
            )
        name = str(form.get("name", "")).strip() or service_name(text)
    except SourceError as exc:
        raise errors.BadRequest(_WHERE, str(exc)) from None
    version = git.ref or "latest"
    return Service(
        name=name,
        version=version,
        source=f"{git.url}@{git.ref}" if git.ref else git.url,
        metadata={"source": text},
        instances=_instances(str(form.get("instances", ""))),
        env=_env(str(form.get("env", ""))),
    )


async def run(context: Context) -> Response:
    """``POST /runtime/run``: create a service from a git URL; its build goes on in the
    background (the table shows its status). Bad input is said on the form."""
    form = await context.request.form()
    shown = {k: str(form.get(k, "")) for k in ("source", "name", "instances", "env")}
    try:
        service = _service(form)
        await context.caller.call(
            "runtime",
            "Runtime.Create",
            {"service": msgspec.to_builtins(service), "force": form.get("force") == "on"},
        )
    except (errors.BadRequest, errors.Conflict) as exc:
        detail = exc.detail.replace("use --force", "tick Replace")
        return await _status(context, status=exc.code, error=detail, form=shown)
    return RedirectResponse("/runtime", status_code=303)


async def update(context: Context) -> Response:
    """``POST /runtime/{name}/update``: rebuild from the same source and restart (its
    instances and environment kept)."""
    name = context.request.path_params["name"]
    version = str((await context.request.form()).get("version", ""))
    found = await _services(context.caller, name, version)
    if not found:
        raise errors.NotFound(_WHERE, f"service {name} ({version or 'any version'}) not found")
    for svc in found:
        # instances 0 and no env: keep the running ones (the runtime's Update merges)
        wanted = {"name": svc.name, "version": svc.version, "source": svc.source, "instances": 0}
        await context.caller.call("runtime", "Runtime.Update", {"service": wanted})
    return RedirectResponse("/runtime", status_code=303)


async def kill(context: Context) -> Response:
    """``POST /runtime/{name}/kill``: stop a service and forget it."""
    name = context.request.path_params["name"]
    version = str((await context.request.form()).get("version", ""))
    await context.caller.call("runtime", "Runtime.Delete", {"service": name, "version": version})
    return RedirectResponse("/runtime", status_code=303)


async def _records(caller: Caller, request: dict[str, Any]) -> AsyncIterator[LogRecord]:
    """The log records ``Runtime.Logs`` streams; the call is cancelled when the reader
    stops early (a browser that went away)."""
    stream = await caller.stream("runtime", "Runtime.Logs", request)
    try:
        while True:
            try:
                data = await stream.recv()
            except StopAsyncIteration:
                return
            yield msgspec.json.decode(data, type=LogRecord)
    finally:
        if not stream.finished:
            stream.cancel()


async def logs(context: Context) -> Response:
    """``/runtime/{name}/logs``: the last lines, then a live tail."""
    name = context.request.path_params["name"]
    version = context.request.query_params.get("version", "")
    request = {"service": name, "version": version, "count": LOG_LINES}
    lines = [record async for record in _records(context.caller, request)]
    return context.render(
        "runtime_logs.html",
        name=name,
        version=version,
        limit=LOG_LINES,
        text="".join(record.message + "\n" for record in lines),
        after=repr(lines[-1].timestamp) if lines else "0",
    )


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


async def logs_tail(context: Context) -> Response:
    """``/runtime/{name}/logs/tail``: new lines as Server-Sent Events (those after
    ``?after=``, a timestamp, or the ``Last-Event-ID`` of a reconnect) until the service
    is gone or the browser goes away."""
    name = context.request.path_params["name"]
    version = context.request.query_params.get("version", "")
    after = _float(resume_from(context.request))
    # a refusal (403, 404) is the error page, which the EventSource does not retry
    check = {"service": name, "version": version, "count": 0}
    async for _ in _records(context.caller, check):
        pass
    follow = {"service": name, "version": version, "count": LOG_LINES, "stream": True}
    caller = context.caller

    async def messages() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        try:
            async for record in _records(caller, follow):
                if record.timestamp > after:
                    yield sse(record.message, id=repr(record.timestamp))
        except errors.Unauthorized:
            return  # reconnect from the last id through page(), which renews the token
        except errors.MicroError as exc:
            yield sse(f"[tail stopped: {exc.detail}]")
        yield END

    return event_stream(messages())


ROUTES = [
    Route("/runtime", page(status_page)),
    Route("/runtime/table", page(status_table)),
    Route("/runtime/run", page(run), methods=["POST"]),
    Route("/runtime/{name}/update", page(update), methods=["POST"]),
    Route("/runtime/{name}/kill", page(kill), methods=["POST"]),
    Route("/runtime/{name}/logs", page(logs)),
    Route("/runtime/{name}/logs/tail", page(logs_tail)),
]
