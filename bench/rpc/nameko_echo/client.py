"""Nameko load client: runs its own closed loop, because nameko clients are eventlet.

Runs only in ``bench/.venv-nameko``.  Concurrency is an eventlet GreenPool;
every green worker owns one ``ClusterRpcProxy`` (its own AMQP connection and
reply queue), since a standalone proxy is single-threaded.  That is how
nameko callers outside a service get concurrency (e.g. flask-nameko's pool).

Protocol with the driver (bench/rpc/nameko_echo/driver.py), one line each::

    client -> WARM                 proxies up, warmup done
    driver -> GO                   driver has sampled server CPU
    client -> RESULT {json}        {"latencies_ns": [...], "elapsed_ns": n}

The driver summarises the raw latencies with the same code as in-process
targets, so percentiles are computed identically.
"""

# ruff: noqa: E402
# nameko, kombu and eventlet ship no types:
# mypy: disable-error-code="no-untyped-call, untyped-decorator, misc"
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import eventlet

eventlet.monkey_patch()

import argparse
import contextlib
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from eventlet.greenpool import GreenPool
from kombu.connection import Connection
from nameko.standalone.rpc import ClusterRpcProxy
from service import DEFAULT_AMQP_URI, names  # same directory (sys.path[0])


def _phase(
    methods: list[Any], budget: int, max_seconds: float, latencies: list[int] | None
) -> None:
    """``budget`` calls (or until ``max_seconds``) spread over one worker per method."""
    remaining = budget
    clock = time.perf_counter_ns
    deadline = clock() + int(max_seconds * 1e9)

    def worker(method: Any) -> None:
        nonlocal remaining
        while remaining > 0 and clock() < deadline:
            remaining -= 1
            t0 = clock()
            reply = method("John")
            if latencies is not None:
                latencies.append(clock() - t0)
            assert reply == {"msg": "Hello John"}, reply

    pool = GreenPool(len(methods))
    for m in methods[: max(1, min(len(methods), budget))]:
        pool.spawn(worker, m)
    with eventlet.Timeout(max_seconds + 30.0):
        pool.waitall()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Nameko bench client")
    ap.add_argument("--amqp-uri", default=DEFAULT_AMQP_URI)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    args = ap.parse_args(argv)
    host = urlsplit(args.amqp_uri).hostname or ""
    if host != "localhost" and not host.startswith("127."):
        raise SystemExit(f"refusing non-loopback broker {host!r}")

    service, exchange = names(args.tag)
    config = {"AMQP_URI": args.amqp_uri, "rpc_exchange": exchange}
    proxies = [ClusterRpcProxy(config, timeout=30) for _ in range(args.concurrency)]
    try:
        methods = [getattr(p.start(), service).call for p in proxies]
        _phase(methods, args.warmup, args.max_seconds, None)
        print("WARM", flush=True)
        if sys.stdin.readline().strip() != "GO":
            raise SystemExit("driver went away")
        latencies: list[int] = []
        t0 = time.perf_counter_ns()
        _phase(methods, args.calls, args.max_seconds, latencies)
        elapsed = time.perf_counter_ns() - t0
        print(
            "RESULT " + json.dumps({"latencies_ns": latencies, "elapsed_ns": elapsed}), flush=True
        )
    finally:
        reply_queues = [
            p._reply_listener.queue.name for p in proxies if hasattr(p._reply_listener, "queue")
        ]
        for p in proxies:
            with contextlib.suppress(Exception):  # best effort on the way out
                p.stop()
        # Reply queues expire on their own (x-expires), but don't leave litter.
        try:
            with Connection(args.amqp_uri, connect_timeout=5) as conn:
                for q in reply_queues:
                    conn.default_channel.queue_delete(q)
        except Exception as exc:
            print(f"reply queue cleanup failed: {exc!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
