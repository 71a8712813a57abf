"""Server-Sent Events for the dashboard's live tails (logs, events): the messages, the
response, and where a reconnecting browser resumes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

__all__ = ["END", "event_stream", "resume_from", "sse"]


def sse(data: str, *, event: str = "", id: str = "") -> bytes:
    """One Server-Sent Event. Each line of ``data`` gets its own ``data:`` field (a bare
    newline would end the event early); the browser joins them back with newlines."""
    fields = [f"id: {id}"] if id else []
    if event:
        fields.append(f"event: {event}")
    fields += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(fields) + "\n\n").encode()


END: Final = sse("", event="end")
"""Tells ``app.js`` the tail is over: it closes the EventSource instead of reconnecting."""


def event_stream(messages: AsyncIterator[bytes]) -> Response:
    """An SSE response. When the browser goes away Starlette cancels ``messages`` (it
    listens for the disconnect beside the body), so a generator's ``finally`` releases
    whatever it follows."""
    return StreamingResponse(
        messages,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def resume_from(request: Request, param: str = "after") -> str:
    """Where a tail starts: the ``Last-Event-ID`` a reconnecting EventSource sends, else
    the page's ``?after=``."""
    return request.headers.get("last-event-id") or request.query_params.get(param, "")
