"""``micro call`` and ``micro stream``: call any endpoint with JSON from the command line.

The request is sent as the JSON bytes the user typed (content type ``application/json``),
never decoded and re-encoded, so numbers and key order arrive as written; the answer is
printed as Micro does, indented with tabs::

    $ micro call helloworld Helloworld.Call '{"name": "John"}'
    {
        "msg": "Hello John"
    }
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import click

from micro.cli._client import Session, run_with_client
from micro.cli.errors import CliError
from micro.cli.main import MicroCommand
from micro.durations import parse_duration

if TYPE_CHECKING:
    from micro.rpc.client import ClientStream

__all__ = ["call", "pretty", "stream"]

_JSON = "application/json"


def pretty(data: bytes) -> str:
    """JSON indented with tabs like Go's ``json.Indent``; literals kept exactly as sent.
    Bytes that are not JSON are printed as they are."""
    import msgspec

    try:
        formatted = msgspec.json.format(data, indent=1).decode()
    except (msgspec.DecodeError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")
    # JSON strings cannot hold a raw newline, so leading spaces are indentation only.
    return "\n".join(
        "\t" * (len(line) - len(stripped)) + stripped
        for line in formatted.split("\n")
        for stripped in (line.lstrip(" "),)
    )


def _request(text: str | None) -> bytes:
    """The request body: the argument, stdin for ``-``, ``{}`` when absent; checked JSON."""
    if text is None:
        return b"{}"
    data = _read_stdin() if text == "-" else text.encode()
    _check_json(data)
    return data.strip()


def _read_stdin() -> bytes:
    try:
        return sys.stdin.buffer.read()
    except KeyboardInterrupt:
        sys.exit(130)


def _check_json(data: bytes) -> None:
    import msgspec

    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        reason = "empty request" if not data.strip() else str(exc)
        raise CliError(f"Invalid request: {reason}", 1) from None


def _metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"Invalid metadata {pair!r}: expected key=value", 1)
        found[key.strip()] = value
    return found


def _emit(data: bytes, output: str) -> None:
    """Print one answer: as received (raw), or tab-indented; UTF-8 whatever the locale."""
    out = sys.stdout.buffer
    if output != "raw":
        data = pretty(data).encode("utf-8", "replace")
    out.write(data if data.endswith(b"\n") else data + b"\n")
    out.flush()


_metadata_option = click.option(
    "-m",
    "--metadata",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata to send with the request (repeatable).",
)
_output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["json", "raw"]),
    default="json",
    show_default=True,
    help="json: indented with tabs; raw: the bytes as received.",
)


@click.command("call", cls=MicroCommand)
@click.argument("service")
@click.argument("endpoint")
@click.argument("request", required=False)
@_metadata_option
@_output_option
@click.option(
    "--request_timeout",
    default="10s",
    show_default=True,
    help="How long to wait for the answer: 5s, 500ms, 1m (a plain number is seconds).",
)
@click.option("--address", help="Call this node (host:port) directly instead of any node.")
def call(
    service: str,
    endpoint: str,
    request: str | None,
    metadata: tuple[str, ...],
    output: str,
    request_timeout: str,
    address: str | None,
) -> None:
    """Call a service endpoint with a JSON request.

    REQUEST is JSON (default {}); - reads it from stdin.
    """
    try:
        timeout = parse_duration(request_timeout)
    except ValueError as exc:
        raise CliError(f"Invalid --request_timeout: {exc}", 1) from None
    md = _metadata(metadata)
    body = _request(request)

    async def run(session: Session) -> bytes:
        return await session.client.call_raw(
            service,
            endpoint,
            body,
            content_type=_JSON,
            timeout=timeout,
            metadata=md,
            address=address,
        )

    _emit(run_with_client(run), output)


@click.command("stream", cls=MicroCommand)
@click.argument("service")
@click.argument("endpoint")
@click.argument("request", required=False)
@_metadata_option
@_output_option
def stream(
    service: str, endpoint: str, request: str | None, metadata: tuple[str, ...], output: str
) -> None:
    """Call a streaming endpoint and print each message.

    Messages are printed until the stream ends.
    Server streaming sends REQUEST (default {}, - reads stdin). Client and bidi streaming
    send REQUEST if given, else one JSON message per line of stdin, then close.
    """
    md = _metadata(metadata)
    first = None if request in (None, "-") else _request(request)

    async def run(session: Session) -> None:
        import msgspec

        kind = await _stream_type(session, service, endpoint)
        sends = kind in ("client", "bidi")
        if sends:
            opened = await session.client.stream(
                service, endpoint, content_type=_JSON, metadata=md, response_type=msgspec.Raw
            )
        else:
            body = first if first is not None else await _read_all(request)
            opened = await session.client.stream(
                service,
                endpoint,
                msgspec.Raw(body),
                content_type=_JSON,
                metadata=md,
                response_type=msgspec.Raw,
            )
        async with opened:
            sender = asyncio.create_task(_send(opened, first)) if sends else None
            try:
                async for message in opened:
                    _emit(bytes(message), output)
            finally:
                if sender is not None:
                    _finish(sender)

    run_with_client(run)


def _finish(sender: asyncio.Task[None]) -> None:
    """Stop the sender; a bad line of stdin it met is the error to show."""
    if not sender.done():
        sender.cancel()
        return
    error = None if sender.cancelled() else sender.exception()
    if isinstance(error, CliError):
        raise error


async def _stream_type(session: Session, service: str, endpoint: str) -> str:
    """``unary``/``server``/``client``/``bidi`` from the registry's endpoint metadata
    (``server`` when the endpoint is not advertised: the service will say what is wrong)."""
    from micro.cli.registry import lookup

    for svc in await lookup(session, service):
        for ep in svc.endpoints:
            if ep.name == endpoint:
                return ep.metadata.get("stream_type", "server")
    return "server"


async def _read_all(request: str | None) -> bytes:
    if request is None:
        return b"{}"
    data = b"".join([line async for line in _stdin_lines()])
    _check_json(data)
    return data.strip()


async def _send(opened: ClientStream[Any], first: bytes | None) -> None:
    """Send the argument, or each non-blank line of stdin, then close the sending side."""
    import msgspec

    try:
        if first is not None:
            await opened.send(msgspec.Raw(first))
        else:
            async for line in _stdin_lines():
                if line.strip():
                    _check_json(line)
                    await opened.send(msgspec.Raw(line.strip()))
    except CliError:
        await opened.close()  # ends the receiving side too; the error is shown instead
        raise
    opened.close_send()


async def _stdin_lines() -> AsyncIterator[bytes]:
    """Lines of stdin as they come (the last may lack its newline).

    A daemon thread reads the file descriptor itself, not ``sys.stdin``: a thread blocked
    inside Python's buffered reader would abort the interpreter at exit (Ctrl-C), and
    one blocked in ``os.read`` is simply dropped.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes | None] = asyncio.Queue()

    def put(item: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the command is over
            loop.call_soon_threadsafe(lines.put_nowait, item)

    def reader() -> None:
        pending = b""
        try:
            fd = sys.stdin.fileno()
            while chunk := os.read(fd, 65536):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    put(line + b"\n")
        except (OSError, ValueError):
            pass
        finally:
            if pending:
                put(pending)
            put(None)

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    while (line := await lines.get()) is not None:
        yield line
