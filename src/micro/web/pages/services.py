"""Services: the namespace's services, one service's versions, nodes and endpoints, and a
form to call each endpoint as the logged-in account.

The list page makes one ``Registry.ListServices`` call whatever the number of services (no
lookup per service); a service's page makes one ``Registry.GetService``. Each endpoint's
form is drawn from its request schema (:mod:`micro.web.forms`); submitting it posts to
``/services/<name>/call?endpoint=<endpoint>`` (htmx swaps the answer in), or for a server
stream to ``/services/<name>/stream?endpoint=...`` (``app.js`` appends messages as they
arrive). The endpoint travels in the query so that no request field can be mistaken for
it, whatever the field is called; ``&raw=1`` marks the raw JSON form (field ``request``).

Both answer as fragments: a refused or failed call is shown in the answer box with its
status and detail (status 200, so htmx swaps it in), not as the error page.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from micro import errors
from micro.web import forms
from micro.web.app import Context, page
from micro.wire.stream import Stream

__all__ = ["ROUTES"]

_ID: Final = "micro.web"
_FIRST_WAIT: Final = 3.0
"""How long a stream's first message (or error) is awaited before the answer starts: a
call refused at once is shown as an error; a quiet stream starts streaming anyway."""


@dataclass
class _Row:
    """One service on the list page: every version of one name."""

    name: str
    versions: list[str] = field(default_factory=list)
    nodes: int | None = None
    """``None`` when the registry listed names only (the service's page has the rest)."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """One endpoint as the service page shows it."""

    index: int
    name: str
    kind: str
    """``unary``, ``server``, ``client`` or ``bidi``."""
    form: forms.Form
    versions: list[str]
    """The versions that have it, when not all of them do."""
    metadata: dict[str, str]
    request_schema: str
    response_schema: str
    path: str
    """The gateway path that names it (for the WebSocket of client and bidi streams)."""


def _rows(listed: list[dict[str, Any]]) -> list[_Row]:
    rows: dict[str, _Row] = {}
    for record in listed:
        row = rows.setdefault(str(record.get("name", "")), _Row(str(record.get("name", ""))))
        if "nodes" in record:
            # "latest", the default version, is left out on the wire
            row.versions.append(str(record.get("version") or "latest"))
            row.nodes = (row.nodes or 0) + len(record["nodes"] or [])
    return sorted(rows.values(), key=lambda r: r.name)


def _kind(endpoint: dict[str, Any]) -> str:
    metadata = endpoint.get("metadata") or {}
    if metadata.get("stream") != "true":
        return "unary"
    # a stream of unknown direction cannot be called with one request: shown as bidi
    kind = metadata.get("stream_type")
    return kind if kind in ("server", "client", "bidi") else "bidi"


def _endpoints(name: str, versions: list[dict[str, Any]]) -> list[_Endpoint]:
    """Every endpoint of any version, by name; the first version having it describes it."""
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for version in versions:
        for endpoint in version.get("endpoints") or []:
            entry = found.setdefault(str(endpoint.get("name", "")), (endpoint, []))
            entry[1].append(str(version.get("version", "")))
    shown = []
    for index, (endpoint_name, (endpoint, having)) in enumerate(sorted(found.items()), start=1):
        request = endpoint.get("request") or {}
        shown.append(
            _Endpoint(
                index=index,
                name=endpoint_name,
                kind=_kind(endpoint),
                form=forms.form_for(request),
                versions=having if len(having) < len(versions) else [],
                metadata={
                    k: v
                    for k, v in (endpoint.get("metadata") or {}).items()
                    if k not in ("stream", "stream_type")
                },
                request_schema=forms.pretty(request),
                response_schema=forms.pretty(endpoint.get("response") or {}),
                path="/" + name.replace(".", "/") + "/" + endpoint_name.replace(".", "/"),
            )
        )
    return shown


async def _versions(context: Context, name: str) -> list[dict[str, Any]]:
    """Every version of ``name`` in the namespace; the registry's 404 when none."""
    answer = await context.caller.call("registry", "Registry.GetService", {"service": name})
    versions = (answer or {}).get("services") or []
    if not versions:
        raise errors.NotFound(_ID, f"no service {name} in namespace {context.session.namespace}")
    for version in versions:
        version["version"] = version.get("version") or "latest"  # the default, left out
    return sorted(versions, key=lambda v: str(v["version"]))


async def services(context: Context) -> Response:
    """``/services``: every service of the namespace, with its versions and node count."""
    answer = await context.caller.call("registry", "Registry.ListServices", {})
    return context.render("services.html", rows=_rows((answer or {}).get("services") or []))


async def service(context: Context) -> Response:
    """``/services/{name}``: a service's versions, nodes and endpoints, each with a form."""
    name = context.request.path_params["name"]
    versions = await _versions(context, name)
    nodes = [(v.get("version", ""), node) for v in versions for node in v.get("nodes") or []]
    return context.render(
        "service_detail.html",
        name=name,
        versions=versions,
        nodes=nodes,
        endpoints=_endpoints(name, versions),
    )


async def _request(context: Context, name: str, kind: str) -> tuple[str, Any]:
    """The endpoint (from the query) and the request (from the form) of a call."""
    query = context.request.query_params
    endpoint = query.get("endpoint", "")
    if not endpoint:
        raise errors.BadRequest(_ID, "which endpoint? (?endpoint= is missing)")
    versions = await _versions(context, name)
    described = next(
        (
            e
            for v in versions
            for e in v.get("endpoints") or []
            if isinstance(e, dict) and e.get("name") == endpoint
        ),
        None,
    )
    if described is None:
        raise errors.NotFound(_ID, f"{name} has no endpoint {endpoint}")
    if _kind(described) != kind:
        how = "a call" if kind == "unary" else "a server stream"
        raise errors.BadRequest(_ID, f"{endpoint} is not {how} (it is {_kind(described)})")
    data = await context.request.form()
    if query.get("raw"):
        text = data.get("request", "")
        return endpoint, forms.request_from_json(text if isinstance(text, str) else "")
    return endpoint, forms.request_from_form(forms.form_for(described.get("request") or {}), data)


async def call(context: Context) -> Response:
    """``POST /services/{name}/call?endpoint=...``: the answer (or error) as a fragment."""
    name = context.request.path_params["name"]
    endpoint = context.request.query_params.get("endpoint", "")
    try:
        endpoint, request = await _request(context, name, "unary")
        started = time.perf_counter()
        answer = await context.caller.call(name, endpoint, request)
    except errors.MicroError as exc:
        return context.render("service_answer.html", endpoint=endpoint, error=exc)
    return context.render(
        "service_answer.html",
        endpoint=endpoint,
        answer=forms.pretty(answer) if answer is not None else "",
        ms=round((time.perf_counter() - started) * 1000),
    )


async def _next(stream: Stream) -> bytes | None:
    try:
        return await stream.recv()
    except StopAsyncIteration:
        return None


def _message(data: bytes) -> str:
    try:
        return forms.pretty(json.loads(data)) + "\n"
    except ValueError:
        return data.decode(errors="replace") + "\n"


async def _relay(stream: Stream, first: asyncio.Task[bytes | None]) -> AsyncIterator[str]:
    """Each message as pretty JSON, then a last line saying how it ended."""
    count = 0
    try:
        data = await first
        while data is not None:
            count += 1
            yield _message(data)
            data = await _next(stream)
        yield f"-- end of stream: {count} message{'' if count == 1 else 's'} --\n"
    except errors.MicroError as exc:
        yield f"-- error after {count} message{'' if count == 1 else 's'}: "
        yield f"{exc.code} {exc.status}: {exc.detail} --\n"
    finally:
        first.cancel()
        if not stream.finished:
            stream.cancel()


async def stream(context: Context) -> Response:
    """``POST /services/{name}/stream?endpoint=...``: a server stream's messages as text,
    each as it arrives; an error before the first is an HTML fragment instead."""
    name = context.request.path_params["name"]
    endpoint = context.request.query_params.get("endpoint", "")
    opened: Stream | None = None
    try:
        endpoint, request = await _request(context, name, "server")
        opened = await context.caller.stream(name, endpoint, request)
        first = asyncio.ensure_future(_next(opened))
        done, _ = await asyncio.wait({first}, timeout=_FIRST_WAIT)
        if done:
            first.result()  # raises the call's error, if that is how it began
    except errors.MicroError as exc:
        if opened is not None and not opened.finished:
            opened.cancel()
        return context.render("service_answer.html", endpoint=endpoint, error=exc)
    return StreamingResponse(
        _relay(opened, first),
        media_type="text/plain; charset=utf-8",
        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"},
    )


ROUTES = [
    Route("/services", page(services)),
    Route("/services/{name}", page(service)),
    Route("/services/{name}/call", page(call), methods=["POST"]),
    Route("/services/{name}/stream", page(stream), methods=["POST"]),
]
