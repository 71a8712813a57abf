"""Events: the namespace's topics, the recent events of a topic, and a live tail.

Everything goes through the ``events`` service as the logged-in account (``Stream.Topics``,
``Stream.Groups`` for a topic's consumer groups and their lag, and ``Store.Read``, which replays without consuming: looking at a topic never takes an
event away from a consumer group). The live tail polls ``Store.Read`` from the last
sequence shown rather than consuming: a consumer without a group would work too, but
polling needs no bidi stream to keep in step with the browser's connection, and resumes
exactly where it was after a reconnect (the SSE ``id`` is the event's sequence).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import quote

import msgspec
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from micro import errors
from micro.events.base import Event
from micro.web.app import Context, page
from micro.web.platform import Caller
from micro.web.sse import END, event_stream, resume_from, sse

__all__ = ["ROUTES"]

PAGE: Final = 50
"""Events shown per page."""
_POLL: Final = 0.5
"""How often the live tail asks for new events."""
_BATCH: Final = 100
_RETRY_MS: Final = 2000


# --------------------------------------------------------------------------- events


def payload_text(payload: bytes) -> str:
    """A payload as the CLI prints it: compact JSON when it is JSON, else the text, else
    ``base64:...``."""
    try:
        return msgspec.json.encode(msgspec.json.decode(payload)).decode()
    except msgspec.DecodeError:
        pass
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(payload).decode()


def when(timestamp: float) -> str:
    """Unix seconds as an RFC 3339 UTC time, to the second."""
    at = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return at.strftime("%Y-%m-%d %H:%M:%SZ")


def line(event: Event) -> str:
    """One event as a line of the live tail."""
    return f"#{event.sequence}  {when(event.timestamp)}  {payload_text(event.payload)}"


async def read(caller: Caller, topic: str, offset: int = 0, limit: int = PAGE) -> list[Event]:
    """Stored events of ``topic`` from sequence ``offset`` (0: the oldest kept)."""
    answer = await caller.call(
        "events", "Store.Read", {"topic": topic, "offset_sequence": offset, "limit": limit}
    )
    return msgspec.convert(answer.get("events") or [], list[Event])


async def last_sequence(caller: Caller, topic: str) -> int:
    """The sequence of the newest event (0: none), in about 2·log2(n) one-event reads:
    ``Store.Read`` reads forwards only, and reading a whole topic to show its end
    would cost as much as the topic is long."""
    first = await read(caller, topic, 0, 1)
    if not first:
        return 0
    # an event at ``low``, none at ``high`` or after
    low, step = first[0].sequence, 1
    while found := await read(caller, topic, low + step, 1):
        low, step = found[0].sequence, step * 2
    high = low + step
    while high - low > 1:
        middle = (low + high) // 2
        found = await read(caller, topic, middle, 1)
        if found:
            low = found[0].sequence
        else:
            high = middle
    return low


async def topics(context: Context) -> Response:
    """``/events``: the namespace's topics (``?topic=`` opens one, also one with no
    events yet)."""
    wanted = context.request.query_params.get("topic", "").strip()
    if wanted:
        return RedirectResponse(f"/events/{quote(wanted, safe='')}", status_code=303)
    answer = await context.caller.call("events", "Stream.Topics", {})
    return context.render("events.html", topics=answer.get("topics") or [])


def _int(text: str) -> int:
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


async def topic(context: Context) -> Response:
    """``/events/{topic}``: a page of a topic's events (the newest by default, ``?from=``
    a sequence for older ones) and, on the newest page, the live tail."""
    name = context.request.path_params["topic"]
    start = _int(context.request.query_params.get("from", ""))
    last = await last_sequence(context.caller, name)
    latest = start == 0 or start + PAGE > last
    if start == 0:
        start = max(last - PAGE + 1, 1)
    shown = await read(context.caller, name, start, PAGE) if last else []
    first = shown[0].sequence if shown else start
    groups = (await context.caller.call("events", "Stream.Groups", {"topic": name}) or {}).get(
        "groups"
    ) or []
    return context.render(
        "events_topic.html",
        topic=name,
        groups=groups,
        events=[(e, payload_text(e.payload), when(e.timestamp)) for e in shown],
        last=last,
        latest=latest,
        older=max(first - PAGE, 1) if first > 1 else 0,
        newer=shown[-1].sequence + 1 if shown and not latest else 0,
        after=shown[-1].sequence if shown else last,
    )


async def tail(context: Context) -> Response:
    """``/events/{topic}/tail``: new events as Server-Sent Events, after ``?after=`` (or
    the ``Last-Event-ID`` of a reconnect), until the browser goes away."""
    name = context.request.path_params["topic"]
    after = _int(resume_from(context.request))
    await read(context.caller, name, after + 1, 1)  # a refusal is the error page, not a 200
    caller = context.caller

    async def messages() -> AsyncIterator[bytes]:
        nonlocal after
        yield f"retry: {_RETRY_MS}\n\n".encode()
        try:
            while True:
                found = await read(caller, name, after + 1, _BATCH)
                for event in found:
                    after = event.sequence
                    yield sse(line(event), id=str(event.sequence))
                if len(found) < _BATCH:
                    await asyncio.sleep(_POLL)
        except errors.Unauthorized:
            # the access token ran out: end without "end", so the browser reconnects
            # (from the last id) through page(), which renews the session
            return
        except errors.MicroError as exc:
            yield sse(f"[tail stopped: {exc.detail}]")
            yield END

    return event_stream(messages())


ROUTES = [
    Route("/events", page(topics)),
    Route("/events/{topic}", page(topic)),
    Route("/events/{topic}/tail", page(tail)),
]
