"""``micro server`` and ``micro service <block>``."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

import click

from micro.cli._run import run
from micro.cli.errors import CliError
from micro.cli.main import MicroCommand

if TYPE_CHECKING:
    from micro.settings import Settings

__all__ = ["server", "service"]

_WEB_ORIGIN = (
    "The dashboard's origin as browsers see it (https://host) when a proxy in front "
    "changes the scheme or host; only its posts are taken."
)


@click.command("server", cls=MicroCommand)
@click.option(
    "--proxy_address",
    envvar="MICRO_PROXY_ADDRESS",
    default="127.0.0.1:8081",
    show_default=True,
    help="Where the proxy (the CLI's door) listens.",
)
@click.option(
    "--profile",
    envvar="MICRO_PROFILE",
    default="local",
    show_default=True,
    help="Named wiring of backends: local, cluster or test.",
)
@click.option("--registry", envvar="MICRO_REGISTRY", help="Registry plugin: memory, etcd.")
@click.option(
    "--registry_address", envvar="MICRO_REGISTRY_ADDRESS", help="etcd URL (http://host:2379)."
)
@click.option(
    "--store", envvar="MICRO_STORE", help="Store plugin: sqlite, memory, postgres, redis."
)
@click.option(
    "--store_address",
    envvar="MICRO_STORE_ADDRESS",
    help="Store backend URL (postgresql://, redis://); config and auth live there too.",
)
@click.option("--broker", envvar="MICRO_BROKER", help="Broker plugin: memory, nats, redis.")
@click.option("--broker_address", envvar="MICRO_BROKER_ADDRESS", help="Broker URL (nats://).")
@click.option("--events", envvar="MICRO_EVENTS", help="Events plugin: sqlite, memory, nats, redis.")
@click.option(
    "--events_address", envvar="MICRO_EVENTS_ADDRESS", help="Events URL (nats:// JetStream)."
)
@click.option(
    "--tls_cert_file",
    envvar="MICRO_TLS_CERT_FILE",
    help="Serve the proxy over TLS with this certificate (PEM).",
)
@click.option(
    "--tls_key_file", envvar="MICRO_TLS_KEY_FILE", help="The TLS certificate's private key (PEM)."
)
@click.option(
    "--auth_token_ttl",
    envvar="MICRO_AUTH_TOKEN_TTL",
    type=click.IntRange(1),
    help="The longest an access token lives, in seconds (default 900), whatever a login asks.",
)
@click.option(
    "--registry_max_services",
    envvar="MICRO_REGISTRY_MAX_SERVICES",
    type=click.IntRange(1),
    help="How many services one namespace may register (default 1000).",
)
@click.option("--web_origin", envvar="MICRO_WEB_ORIGIN", help=_WEB_ORIGIN)
@click.option(
    "--insecure_shared_uid",
    envvar="MICRO_INSECURE_SHARED_UID",
    is_flag=True,
    default=False,
    help="Run every namespace's services as the server's own user, unconfined. Without it, "
    "a server run as root gives each namespace a user and sandbox of its own, and one not "
    "run as root runs namespace micro's services only: theirs could read its keys.",
)
@click.option(
    "--runtime_file_roots",
    envvar="MICRO_RUNTIME_FILE_ROOTS",
    help="Comma-separated folders from which any namespace's admins may micro run file:// "
    "git sources; elsewhere only platform admins may.",
)
@click.option(
    "--api_cors_origins",
    envvar="MICRO_API_CORS_ORIGINS",
    help="Origins the gateway allows CORS from, comma-separated, or * (never with credentials)."
    "  [default: none, CORS off]",
)
@click.option(
    "--api_max_body",
    envvar="MICRO_API_MAX_BODY",
    type=click.IntRange(1),
    help="Largest request body the gateway takes, in bytes (413 above); at most what one frame"
    " carries.  [default: 16 MiB less 64 KiB]",
)
@click.option(
    "--http_header_timeout",
    envvar="MICRO_HTTP_HEADER_TIMEOUT",
    type=click.FloatRange(0, min_open=True),
    help="Seconds the HTTP listeners wait for a request's headers (408).  [default: 10]",
)
@click.option(
    "--http_max_header",
    envvar="MICRO_HTTP_MAX_HEADER",
    type=click.IntRange(1),
    help="Bytes a request's line and headers may take (431).  [default: 32768]",
)
@click.option(
    "--http_idle_timeout",
    envvar="MICRO_HTTP_IDLE_TIMEOUT",
    type=click.FloatRange(0, min_open=True),
    help="Seconds a kept-alive HTTP connection may idle.  [default: 5]",
)
@click.option(
    "--http_max_connections",
    envvar="MICRO_HTTP_MAX_CONNECTIONS",
    type=click.IntRange(1),
    help="Connections per HTTP listener; more get a 503.  [default: 1000]",
)
@click.option(
    "--wire_frame_timeout",
    envvar="MICRO_WIRE_FRAME_TIMEOUT",
    type=click.FloatRange(0, min_open=True),
    help="Seconds a native connection has for its first frame, and any frame once"
    " begun.  [default: 30]",
)
@click.option(
    "--wire_idle_timeout",
    envvar="MICRO_WIRE_IDLE_TIMEOUT",
    type=click.FloatRange(0, min_open=True),
    help="Seconds a native connection with no call may idle.  [default: 300]",
)
@click.option(
    "--wire_read_budget",
    envvar="MICRO_WIRE_READ_BUDGET",
    type=click.IntRange(1),
    help="Bytes the frames arriving on one native listener may hold (at least"
    " 16 MiB); others wait.  [default: 64 MiB]",
)
def server(
    proxy_address: str,
    profile: str,
    registry: str | None,
    registry_address: str | None,
    store: str | None,
    store_address: str | None,
    broker: str | None,
    broker_address: str | None,
    events: str | None,
    events_address: str | None,
    tls_cert_file: str | None,
    tls_key_file: str | None,
    auth_token_ttl: int | None,
    registry_max_services: int | None,
    web_origin: str | None,
    insecure_shared_uid: bool,
    runtime_file_roots: str | None,
    **limits: str | float | None,
) -> None:
    """Run the micro server: every block and the proxy in one process, until SIGINT/SIGTERM.

    Secrets come from the environment only, never flags (a command line is visible to
    every user): MICRO_AUTH_PRIVATE_KEY, MICRO_CONFIG_SECRET_KEY, MICRO_WEB_SECRET (the
    dashboard's key; default: derived from the auth key).

    \b
    Where it listens (host:port, or off for an edge):
      MICRO_PROXY_ADDRESS   the proxy, the CLI's door (--proxy_address)  [127.0.0.1:8081]
      MICRO_API_ADDRESS     the HTTP gateway                            [127.0.0.1:8080]
      MICRO_WEB_ADDRESS     the web dashboard                           [127.0.0.1:8082]
      MICRO_GRPC_ADDRESS    the gRPC edge                               [127.0.0.1:8083]
    """
    from micro.log import configure
    from micro.server.app import run_server
    from micro.settings import load

    os.environ["MICRO_PROXY_ADDRESS"] = proxy_address
    os.environ["MICRO_PROFILE"] = profile
    for key, value in (
        ("MICRO_REGISTRY", registry),
        ("MICRO_REGISTRY_ADDRESS", registry_address),
        ("MICRO_STORE", store),
        ("MICRO_STORE_ADDRESS", store_address),
        ("MICRO_BROKER", broker),
        ("MICRO_BROKER_ADDRESS", broker_address),
        ("MICRO_EVENTS", events),
        ("MICRO_EVENTS_ADDRESS", events_address),
        ("MICRO_TLS_CERT_FILE", tls_cert_file),
        ("MICRO_TLS_KEY_FILE", tls_key_file),
        ("MICRO_AUTH_TOKEN_TTL", auth_token_ttl),
        ("MICRO_REGISTRY_MAX_SERVICES", registry_max_services),
        ("MICRO_WEB_ORIGIN", web_origin),
        ("MICRO_INSECURE_SHARED_UID", "1" if insecure_shared_uid else None),
        ("MICRO_RUNTIME_FILE_ROOTS", runtime_file_roots),
        *((f"MICRO_{name.upper()}", value) for name, value in limits.items()),
    ):
        if value:
            os.environ[key] = str(value)
    os.umask(0o077)  # what the server writes (keys, databases, logs) is its own
    settings = load()
    configure(settings.log_level, settings.log_format)

    async def serve() -> None:
        try:
            await run_server(settings)
        except OSError as exc:
            setting = _taken(exc, settings)
            if setting is None:
                raise
            off = "" if setting.startswith("MICRO_PROXY") else " (or off)"
            raise CliError(
                f"{exc.strerror or exc}: another server (a micro server?) listens there; "
                f"set {setting} to another address{off}",
                1,
            ) from None

    run(serve)


_ADDRESSES = (
    ("proxy_address", "MICRO_PROXY_ADDRESS (--proxy_address)"),
    ("api_address", "MICRO_API_ADDRESS"),
    ("web_address", "MICRO_WEB_ADDRESS"),
    ("grpc_address", "MICRO_GRPC_ADDRESS"),
)


def _taken(exc: OSError, settings: Settings) -> str | None:
    """The setting of the address a listener found taken, if that is what ``exc`` says."""
    text = str(exc)
    taken = ("already in use", "failed to bind")  # the gRPC edge's words for it
    if exc.errno != errno.EADDRINUSE and not any(word in text.lower() for word in taken):
        return None
    for field, setting in _ADDRESSES:
        if f" {getattr(settings, field)}" in text:
            return setting
    return None


@click.command("service", cls=MicroCommand)
@click.argument("block")
@click.option(
    "--address",
    envvar="MICRO_SERVICE_ADDRESS",
    default="127.0.0.1:0",
    show_default=True,
    help="Where the block listens.",
)
def service(block: str, address: str) -> None:
    """Run one building block alone as its own service (e.g. micro service registry)."""
    from micro.log import configure
    from micro.server.app import serve_block
    from micro.settings import load

    settings = load()
    configure(settings.log_level, settings.log_format)
    run(lambda: serve_block(block, settings, address))


@click.command("web", cls=MicroCommand)
@click.option(
    "--web_address",
    envvar="MICRO_WEB_ADDRESS",
    default="127.0.0.1:8082",
    show_default=True,
    help="Where the dashboard listens.",
)
@click.option("--web_origin", envvar="MICRO_WEB_ORIGIN", help=_WEB_ORIGIN)
def web(web_address: str, web_origin: str | None) -> None:
    """Run the web dashboard alone, for the server at MICRO_PROXY (or the current env).

    Its key (which seals sessions and makes CSRF tokens) is MICRO_WEB_SECRET, 32
    characters or more, the same for every copy behind one address; else the server's
    auth key when this MICRO_HOME holds it; else one generated under MICRO_HOME.
    """
    from micro.log import configure
    from micro.server.app import serve_block
    from micro.settings import load

    if web_origin:
        os.environ["MICRO_WEB_ORIGIN"] = web_origin

    settings = load()
    configure(settings.log_level, settings.log_format)
    run(lambda: serve_block("web", settings, web_address))
