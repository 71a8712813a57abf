"""The RPC benchmark targets, and the tiny ``Target`` shape to add more.

A target is a server program plus a way to load it:

* ``server_argv(tag)`` -> argv of a process that serves the echo call and
  prints ``READY <host:port>`` (``tag`` is unique per server start; use it for
  any name that must not collide between runs, or ignore it);
* either ``connect(address)`` -> ``Client(call, close)``, an asyncio client
  living in the driver process: ``call()`` makes one request for
  ``{"name":"John"}`` and awaits ``{"msg":"Hello John"}``, and must be safe to
  run from many tasks at once (the driver runs 64 in flight);
* or ``external(...)`` -> ``Result``, for clients that cannot live in the
  driver's asyncio loop (nameko/eventlet) and run their own load loop in a
  subprocess.

Our own rows are ``micro-direct`` (a client calling a service node) and ``micro-proxy``
(the same call through ``micro server``'s proxy hop), both from ``micro_hello.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from bench._harness import BENCH_DIR, Result, Window
from bench.rpc.grpc_echo import GrpcEchoClient
from bench.rpc.micro_hello import MicroHelloClient
from bench.rpc.nameko_echo import driver as nameko
from bench.rpc.raw_echo import RawEchoClient

RPC_DIR = BENCH_DIR / "rpc"


class Client(NamedTuple):
    """An in-process client: one request per ``call()``; ``close()`` once at the end."""

    call: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


ClientFactory = Callable[[str], Awaitable[Client]]


class ExternalLoad(Protocol):
    """Run warmup + one measured phase out of process; bracket it with ``window``."""

    def __call__(
        self,
        *,
        tag: str,
        concurrency: int,
        calls: int,
        warmup: int,
        max_seconds: float,
        window: Window | None,
    ) -> Awaitable[Result]: ...


def _no_skip() -> str | None:
    return None


def _no_pids() -> list[int]:
    return []


@dataclass(frozen=True)
class Target:
    """One row family of the benchmark. Exactly one of connect/external is set."""

    name: str
    server_argv: Callable[[str], list[str]]
    connect: ClientFactory | None = None
    external: ExternalLoad | None = None
    #: Returns why this target cannot run here (shown as "skipped: ..."), or None.
    skip_reason: Callable[[], str | None] = _no_skip
    #: Other processes whose CPU is part of serving a call (e.g. the broker).
    aux_pids: Callable[[], list[int]] = _no_pids
    note: str = ""

    def __post_init__(self) -> None:
        if (self.connect is None) == (self.external is None):
            raise ValueError(f"target {self.name}: set exactly one of connect / external")


def _script(name: str, mode: str = "serve") -> Callable[[str], list[str]]:
    return lambda tag: [sys.executable, str(RPC_DIR / name), mode, "--host", "127.0.0.1"]


async def _micro_traced(address: str) -> Client:
    c = await MicroHelloClient.connect(address, traced=True)
    return Client(c.call, c.close)


async def _raw(address: str) -> Client:
    c = await RawEchoClient.connect(address)
    return Client(c.call, c.close)


async def _grpc(address: str) -> Client:
    c = await GrpcEchoClient.connect(address)
    return Client(c.call, c.close)


async def _micro(address: str) -> Client:
    c = await MicroHelloClient.connect(address)
    return Client(c.call, c.close)


TARGETS: dict[str, Target] = {
    "micro-direct": Target(
        "micro-direct",
        server_argv=_script("micro_hello.py"),
        connect=_micro,
        note="micro.rpc Server + Client, msgpack bodies, typed handler: a service node",
    ),
    "micro-direct-traced": Target(
        "micro-direct-traced",
        server_argv=_script("micro_hello.py", "serve-traced"),
        connect=_micro_traced,
        note="micro-direct with tracing on, sampled 100%: client and server spans, batched export",
    ),
    "micro-proxy": Target(
        "micro-proxy",
        server_argv=_script("micro_hello.py", "serve-proxy"),
        connect=_micro,
        note="the same call through micro server's proxy to a helloworld process",
    ),
    "micro-proxy-untraced": Target(
        "micro-proxy-untraced",
        server_argv=_script("micro_hello.py", "serve-proxy-untraced"),
        connect=_micro,
        note="micro-proxy with tracing off (MICRO_TRACE_SAMPLE=0): the proxy hop's own cost",
    ),
    "raw-echo": Target(
        "raw-echo",
        server_argv=_script("raw_echo.py"),
        connect=_raw,
        note="uvloop Protocol, framed bytes, one connection: the ceiling",
    ),
    "grpcio": Target(
        "grpcio",
        server_argv=_script("grpc_echo.py"),
        connect=_grpc,
        note="grpc.aio generic handler, bytes in/out, one channel",
    ),
    "nameko": Target(
        "nameko",
        server_argv=nameko.server_argv,
        external=nameko.run_client,
        skip_reason=nameko.skip_reason,
        aux_pids=nameko.broker_pids,
        note="nameko 2.14 via RabbitMQ; client = eventlet pool of ClusterRpcProxy",
    ),
}

#: Ratios in the report are taken against these, at the same concurrency.
BASELINES = ("grpcio", "raw-echo")
