"""Nameko 2.14 ``helloworld`` service: the RPC peer Python people know.

Runs only in ``bench/.venv-nameko`` (see setup.sh): eventlet monkey patching
must come before any other import, so this module does it first.

Why a hand-rolled runner instead of ``nameko run``: the harness needs the
``READY`` line only once the RPC queue consumer is really consuming, which
``ServiceRunner.start()`` guarantees; and on SIGTERM we delete this run's
durable queue and exchange, which ``nameko run`` would leave in the broker.

Each run uses its own names (``--tag``, the driver passes pid + counter):
service ``helloworld_<tag>`` on exchange ``nameko-rpc-bench-<tag>``, so
concurrent or crashed runs never share a queue.  Nameko's own defaults are
kept otherwise (JSON serializer, max_workers=10).

    bench/.venv-nameko/bin/python bench/rpc/nameko_echo/service.py serve --tag T
"""

# ruff: noqa: E402
# nameko, kombu and eventlet ship no types:
# mypy: disable-error-code="no-untyped-call, untyped-decorator, misc"
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import eventlet

eventlet.monkey_patch()

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make ``import bench`` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from kombu.connection import Connection
from nameko.rpc import rpc
from nameko.runners import ServiceRunner

from bench._serve import announce_ready, check_loopback, start_watchdog

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"


def names(tag: str) -> tuple[str, str]:
    """(service name, rpc exchange name) for one run."""
    return f"helloworld_{tag}", f"nameko-rpc-bench-{tag}"


class HelloWorld:
    """The service; ``name`` is overwritten per run before the runner sees it."""

    name = "helloworld"

    @rpc
    def call(self, name: str) -> dict[str, str]:
        return {"msg": "Hello " + name}


def _cleanup(amqp_uri: str, service: str, exchange: str) -> None:
    """Best effort: drop this run's durable queue and exchange."""
    try:
        with Connection(amqp_uri, connect_timeout=5) as conn:
            ch = conn.default_channel
            ch.queue_delete(f"rpc-{service}")
            ch.exchange_delete(exchange)
    except Exception as exc:  # shutting down anyway
        print(f"cleanup failed: {exc!r}", file=sys.stderr)


def serve(amqp_uri: str, tag: str) -> None:
    url = urlsplit(amqp_uri)
    host = check_loopback(url.hostname or "127.0.0.1")
    service, exchange = names(tag)
    HelloWorld.name = service
    config: dict[str, Any] = {"AMQP_URI": amqp_uri, "rpc_exchange": exchange}
    runner = ServiceRunner(config)
    runner.add_service(HelloWorld)

    def on_term(signum: int, frame: Any) -> None:
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    runner.start()
    try:
        announce_ready(host, url.port or 5672)
        runner.wait()
    finally:
        _cleanup(amqp_uri, service, exchange)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Nameko helloworld bench service")
    ap.add_argument("mode", choices=["serve"])
    ap.add_argument("--amqp-uri", default=os.environ.get("BENCH_AMQP_URI", DEFAULT_AMQP_URI))
    ap.add_argument("--tag", default=str(os.getpid()))
    args = ap.parse_args(argv)
    start_watchdog()
    serve(args.amqp_uri, args.tag)


if __name__ == "__main__":
    main()
