"""Settings from ``MICRO_*`` variables: one variable per setting, same meaning everywhere.

Read once per process with :func:`load`; commands turn their flags into the same
variables, so a flag and its variable can never disagree.
"""

from __future__ import annotations

import os
import re
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_PROXY", "MAX_BODY", "Settings", "home", "load", "server_ssl"]

DEFAULT_PROXY = "127.0.0.1:8081"

MAX_BODY = 16 * 1024 * 1024 - 64 * 1024 - 1
"""The largest request body one frame of the wire carries (``micro.wire.frames.MAX_BODY``:
16 MiB less what metadata may take), hence the most ``MICRO_API_MAX_BODY`` may be."""


def _number(environ: Mapping[str, str], key: str) -> float | None:
    """The number ``key`` holds, ``None`` when unset; ValueError naming it when not a number."""
    raw = environ.get(key, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a number") from None


def _float(environ: Mapping[str, str], key: str, default: float) -> float:
    value = _number(environ, key)
    if value is None:
        return default
    if value <= 0:
        raise ValueError(f"{key} must be positive")
    return value


def _share(environ: Mapping[str, str], key: str, default: float) -> float:
    """A number from 0 to 1."""
    value = _number(environ, key)
    if value is None:
        return default
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{key}={value:g}: use a number from 0 (off) to 1 (every trace)")
    return value


def _origins(raw: str | None) -> tuple[str, ...]:
    origins = tuple(o.strip() for o in (raw or "").split(",") if o.strip())
    return ("*",) if "*" in origins else origins


def _max_body(environ: Mapping[str, str]) -> int:
    size = int(_float(environ, "MICRO_API_MAX_BODY", MAX_BODY))
    if size > MAX_BODY:
        raise ValueError(
            f"MICRO_API_MAX_BODY={size} is more than one frame of the wire carries: "
            f"at most {MAX_BODY} bytes (16 MiB less 64 KiB for metadata)"
        )
    return size


def _read_budget(environ: Mapping[str, str]) -> int:
    budget = int(_float(environ, "MICRO_WIRE_READ_BUDGET", 64 * 1024 * 1024))
    if budget < 16 * 1024 * 1024 + 10:
        raise ValueError("MICRO_WIRE_READ_BUDGET must hold one whole frame (16 MiB) at least")
    return budget


def _flag(environ: Mapping[str, str], key: str) -> bool:
    raw = environ.get(key, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{key}={raw!r}: use 1 or 0 (true/false, yes/no, on/off)")


def _folders(environ: Mapping[str, str], key: str) -> tuple[Path, ...]:
    """Comma-separated absolute folders."""
    found = tuple(Path(p.strip()) for p in environ.get(key, "").split(",") if p.strip())
    for path in found:
        if not path.is_absolute():
            raise ValueError(f"{key}: {str(path)!r} is not an absolute path")
    return found


def _pid(environ: Mapping[str, str], key: str) -> int | None:
    raw = environ.get(key, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"{key}={raw!r} is not a process id")
    return int(raw)


def _replica(environ: Mapping[str, str]) -> str:
    raw = environ.get("MICRO_REPLICA", "").strip()
    if not raw:
        return uuid.uuid4().hex[:12]
    if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", raw):
        raise ValueError(f"MICRO_REPLICA={raw!r}: use 1 to 32 letters, digits or '_'")
    return raw


def home(environ: Mapping[str, str] | None = None) -> Path:
    """``MICRO_HOME`` (default ``~/.micro``), created with mode 0700."""
    env = os.environ if environ is None else environ
    path = Path(env.get("MICRO_HOME") or Path.home() / ".micro").expanduser()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process of the platform reads from its environment."""

    home: Path
    """``MICRO_HOME``: where the CLI keeps its environments and logins, and a server its
    keys, databases and logs (``~/.micro``)."""
    profile: str = "local"
    proxy: str | None = None
    """``MICRO_PROXY``: overrides the current environment's proxy address."""
    env: str | None = None
    """``MICRO_ENV``: the environment (server) of ``micro env`` to use; default: the current one."""
    namespace: str | None = None
    """``MICRO_NAMESPACE``: the namespace to act in; default: the environment's current one."""
    api_address: str = "127.0.0.1:8080"
    """``MICRO_API_ADDRESS``: where the HTTP gateway listens (``off`` to not start it)."""
    proxy_address: str = "127.0.0.1:8081"
    web_address: str = "127.0.0.1:8082"
    """``MICRO_WEB_ADDRESS``: where the dashboard listens (``off`` to not start it)."""
    web_origin: str | None = None
    """``MICRO_WEB_ORIGIN``: the dashboard's origin as browsers see it (``https://host``)
    when a proxy in front changes the scheme or host; default: what each request says."""
    web_secret: str | None = None
    """``MICRO_WEB_SECRET``: the dashboard's key (see :mod:`micro.web.keys`)."""
    grpc_address: str = "127.0.0.1:8083"
    """``MICRO_GRPC_ADDRESS``: the gRPC edge (``off`` to not start it)."""
    api_max_body: int = MAX_BODY
    """``MICRO_API_MAX_BODY``: the largest request body the gateway takes (bytes); 413 above.
    At most (and by default) :data:`MAX_BODY`, what one frame of the wire carries."""
    api_cors_origins: tuple[str, ...] = ()
    """``MICRO_API_CORS_ORIGINS``: comma-separated origins the gateway allows (``*``: any);
    unset or empty, CORS is off. Never with credentials: the gateway takes no cookies."""
    http_header_timeout: float = 10.0
    """``MICRO_HTTP_HEADER_TIMEOUT``: seconds an HTTP listener (gateway, dashboard) waits for
    a request's headers, from the connection or the request's first byte (then 408)."""
    http_max_header: int = 32 * 1024
    """``MICRO_HTTP_MAX_HEADER``: bytes a request's line and headers may take (then 431)."""
    http_idle_timeout: float = 5.0
    """``MICRO_HTTP_IDLE_TIMEOUT``: seconds a kept-alive HTTP connection may wait idle."""
    http_max_connections: int = 1000
    """``MICRO_HTTP_MAX_CONNECTIONS``: connections per HTTP listener; more are answered 503."""
    wire_frame_timeout: float = 30.0
    """``MICRO_WIRE_FRAME_TIMEOUT``: seconds a native listener gives a connection to send its
    first whole frame, and any frame to arrive whole once it has begun."""
    wire_idle_timeout: float = 300.0
    """``MICRO_WIRE_IDLE_TIMEOUT``: seconds a native connection with no call in flight may
    stay silent before the listener closes it (clients' pools dial again)."""
    wire_read_budget: int = 64 * 1024 * 1024
    """``MICRO_WIRE_READ_BUDGET``: bytes the frames still arriving on all the connections of
    one native listener may hold; a frame that does not fit waits for room."""
    log_level: str = "info"
    """``MICRO_LOG_LEVEL``: ``debug``, ``info``, ``warning`` or ``error``."""
    log_format: str = "text"
    """``MICRO_LOG_FORMAT``: ``text`` (Micro's lines) or ``json`` (one object per line)."""
    service_name: str | None = None
    """``MICRO_SERVICE_NAME``: a service's name when its code gives none (the runtime sets it)."""
    service_version: str | None = None
    """``MICRO_SERVICE_VERSION``: a service's version (default ``latest``; the runtime sets it)."""
    service_address: str = "127.0.0.1:0"
    """``MICRO_SERVICE_ADDRESS``: where a service listens (a free port by default)."""
    service_advertise: str | None = None
    """``MICRO_SERVICE_ADVERTISE``: the address a service registers, when callers must
    reach it by another one than it listens on."""
    service_id: str | None = None
    """``MICRO_SERVICE_ID``: the registry node id (the runtime sets it, to know when
    that very process has registered)."""
    runtime_parent: int | None = None
    """``MICRO_RUNTIME_PARENT``: the pid of the server that runs this service; the
    service stops if that server goes away."""
    register_ttl: float = 90.0
    """``MICRO_REGISTER_TTL``: seconds a service's registration lives unless renewed."""
    register_interval: float = 30.0
    """``MICRO_REGISTER_INTERVAL``: seconds between a service's renewals of its registration."""
    drain_delay: float = 0.0
    """``MICRO_DRAIN_DELAY``: seconds a stopping service keeps serving after it
    deregistered, while proxies stop routing to it (the runtime sets 0.5, so a rolling
    update fails no call)."""
    replica: str = "server"
    """``MICRO_REPLICA``: this server's name among the replicas sharing one set of
    backends (default: random per start). Its core services register under it."""
    replica_ttl: float = 10.0
    """``MICRO_REPLICA_TTL``: how long a replica that stopped answering counts as alive;
    after that another replica adopts the services it ran."""
    registry: str | None = None
    registry_address: str | None = None
    store: str | None = None
    store_address: str | None = None
    """``MICRO_STORE_ADDRESS``: ``postgresql://...`` or ``redis://...`` for those plugins."""
    backend_prefix: str = "micro"
    """``MICRO_PREFIX``: the platform's own space on shared backends (the PostgreSQL
    schema, the Redis key prefix, the NATS stream and subject prefix), so several
    platforms can share one server."""
    tls_cert_file: str | None = None
    """``MICRO_TLS_CERT_FILE`` and ``MICRO_TLS_KEY_FILE``: serve the proxy over TLS."""
    tls_key_file: str | None = None
    auth_id: str | None = None
    """``MICRO_AUTH_ID`` and ``MICRO_AUTH_SECRET``: a service's own account (the runtime
    sets them); without them a hand-started service acts as the developer's CLI login."""
    auth_secret: str | None = None
    admin_password: str | None = None
    """``MICRO_ADMIN_PASSWORD``: the first admin's password (see ARCHITECTURE.md)."""
    broker: str | None = None
    broker_address: str | None = None
    """``MICRO_BROKER_ADDRESS``: ``nats://...`` or ``redis://...`` for those plugins."""
    events: str | None = None
    events_address: str | None = None
    """``MICRO_EVENTS_ADDRESS``: ``nats://...`` (JetStream) or ``redis://...`` (Streams)."""
    config_secret_key: str | None = None
    """``MICRO_CONFIG_SECRET_KEY``: base64 of 32 bytes; generated under MICRO_HOME if unset."""
    auth_token_ttl: float = 900.0
    """``MICRO_AUTH_TOKEN_TTL``: the longest an access token lives, in seconds, whatever a
    login asks for."""
    registry_max_services: int = 1000
    """``MICRO_REGISTRY_MAX_SERVICES``: how many services one namespace may register."""
    insecure_shared_uid: bool = False
    """``MICRO_INSECURE_SHARED_UID``: run every namespace's services as the server's own
    user, unconfined. Without it a server not run as root runs namespace ``micro``'s only
    (see :mod:`micro.runtime.sandbox`)."""
    runtime_file_roots: tuple[Path, ...] = ()
    """``MICRO_RUNTIME_FILE_ROOTS``: comma-separated folders from which any namespace's
    admins may run ``file://`` git sources; elsewhere only platform admins may."""
    trace_sample: float = 1.0
    """``MICRO_TRACE_SAMPLE``: the share of traces recorded, from 0 (tracing off: trace
    context still passes through) to 1 (every trace); decided where a trace starts."""
    trace_max_traces: int = 1000
    """``MICRO_TRACE_MAX_TRACES``: about how many recent traces ``micro server`` keeps per
    namespace (its oldest batches of spans go whole)."""
    trace_max_bytes: int = 64 * 1024 * 1024
    """``MICRO_TRACE_MAX_BYTES``: the bytes all the traces ``micro server`` keeps may take."""
    otlp_endpoint: str | None = None
    """``MICRO_OTLP_ENDPOINT``: an OTLP/HTTP collector (``http://host:4318``) every process
    also exports its spans to (needs ``micro-python[otlp]``)."""


def server_ssl(settings: Settings) -> ssl.SSLContext | None:
    """The proxy's TLS context when a certificate and key are configured (both or neither)."""
    if not settings.tls_cert_file and not settings.tls_key_file:
        return None
    if not (settings.tls_cert_file and settings.tls_key_file):
        raise ValueError("TLS needs both MICRO_TLS_CERT_FILE and MICRO_TLS_KEY_FILE")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS certificate or key: {exc}") from None
    return context


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ

    def get(key: str) -> str | None:
        value = env.get(key, "").strip()
        return value or None

    return Settings(
        home=home(env),
        profile=get("MICRO_PROFILE") or "local",
        proxy=get("MICRO_PROXY"),
        env=get("MICRO_ENV"),
        namespace=get("MICRO_NAMESPACE"),
        api_address=get("MICRO_API_ADDRESS") or "127.0.0.1:8080",
        proxy_address=get("MICRO_PROXY_ADDRESS") or "127.0.0.1:8081",
        web_address=get("MICRO_WEB_ADDRESS") or "127.0.0.1:8082",
        web_origin=get("MICRO_WEB_ORIGIN"),
        web_secret=get("MICRO_WEB_SECRET"),
        grpc_address=get("MICRO_GRPC_ADDRESS") or "127.0.0.1:8083",
        api_max_body=_max_body(env),
        api_cors_origins=_origins(env.get("MICRO_API_CORS_ORIGINS")),
        http_header_timeout=_float(env, "MICRO_HTTP_HEADER_TIMEOUT", 10.0),
        http_max_header=int(_float(env, "MICRO_HTTP_MAX_HEADER", 32 * 1024)),
        http_idle_timeout=_float(env, "MICRO_HTTP_IDLE_TIMEOUT", 5.0),
        http_max_connections=int(_float(env, "MICRO_HTTP_MAX_CONNECTIONS", 1000)),
        wire_frame_timeout=_float(env, "MICRO_WIRE_FRAME_TIMEOUT", 30.0),
        wire_idle_timeout=_float(env, "MICRO_WIRE_IDLE_TIMEOUT", 300.0),
        wire_read_budget=_read_budget(env),
        log_level=(get("MICRO_LOG_LEVEL") or "info").lower(),
        log_format=(get("MICRO_LOG_FORMAT") or "text").lower(),
        service_name=get("MICRO_SERVICE_NAME"),
        service_version=get("MICRO_SERVICE_VERSION"),
        service_address=get("MICRO_SERVICE_ADDRESS") or "127.0.0.1:0",
        service_advertise=get("MICRO_SERVICE_ADVERTISE"),
        service_id=get("MICRO_SERVICE_ID"),
        runtime_parent=_pid(env, "MICRO_RUNTIME_PARENT"),
        register_ttl=_float(env, "MICRO_REGISTER_TTL", 90.0),
        register_interval=_float(env, "MICRO_REGISTER_INTERVAL", 30.0),
        drain_delay=_float(env, "MICRO_DRAIN_DELAY", 0.0),
        replica=_replica(env),
        replica_ttl=_float(env, "MICRO_REPLICA_TTL", 10.0),
        registry=get("MICRO_REGISTRY"),
        registry_address=get("MICRO_REGISTRY_ADDRESS"),
        store=get("MICRO_STORE"),
        store_address=get("MICRO_STORE_ADDRESS"),
        backend_prefix=get("MICRO_PREFIX") or "micro",
        broker=get("MICRO_BROKER"),
        broker_address=get("MICRO_BROKER_ADDRESS"),
        events=get("MICRO_EVENTS"),
        events_address=get("MICRO_EVENTS_ADDRESS"),
        config_secret_key=get("MICRO_CONFIG_SECRET_KEY"),
        tls_cert_file=get("MICRO_TLS_CERT_FILE"),
        tls_key_file=get("MICRO_TLS_KEY_FILE"),
        admin_password=get("MICRO_ADMIN_PASSWORD"),
        auth_id=get("MICRO_AUTH_ID"),
        auth_secret=get("MICRO_AUTH_SECRET"),
        auth_token_ttl=_float(env, "MICRO_AUTH_TOKEN_TTL", 900.0),
        registry_max_services=int(_float(env, "MICRO_REGISTRY_MAX_SERVICES", 1000)),
        insecure_shared_uid=_flag(env, "MICRO_INSECURE_SHARED_UID"),
        runtime_file_roots=_folders(env, "MICRO_RUNTIME_FILE_ROOTS"),
        trace_sample=_share(env, "MICRO_TRACE_SAMPLE", 1.0),
        trace_max_traces=int(_float(env, "MICRO_TRACE_MAX_TRACES", 1000)),
        trace_max_bytes=int(_float(env, "MICRO_TRACE_MAX_BYTES", 64 * 1024 * 1024)),
        otlp_endpoint=get("MICRO_OTLP_ENDPOINT"),
    )
