"""Our helloworld ``Call`` served two ways, for the RPC benchmark.

``serve``        the helloworld handler on a bare ``micro.rpc.Server`` (what a service's
                 node is): the client calls it directly.
``serve-proxy``  a real ``micro server`` plus a real helloworld service process; prints
                 the proxy's address, so the client's calls go through the proxy hop.
``serve-proxy-untraced``  ``serve-proxy`` with ``MICRO_TRACE_SAMPLE=0`` (no spans recorded).
``serve-traced`` ``serve`` with tracing on, sampled 100% (a service's default): the
                 server's tracing observer, spans exported in batches by the recorder
                 (encoded as ``Trace.Record`` would send them; the socket write is left out).

All print ``READY <host:port>``. The client sends msgpack, the default of Python callers.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``import bench`` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._serve import announce_ready, check_loopback, start_watchdog

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "helloworld"))


def start_tracing(service: str) -> None:
    """Turn this process's recorder on, sampling every trace, with a sink that encodes each
    batch as the export to the server does (``Trace.Record``'s msgpack body)."""
    import msgspec

    from micro.trace import recorder
    from micro.trace.proto import RecordRequest

    encoder = msgspec.msgpack.Encoder()

    async def sink(batch: list[Any]) -> None:
        encoder.encode(RecordRequest(batch))

    recorder.configure(service=service, sample=1.0)
    recorder.attach("bench", sink, owner=sink)
    recorder.start()


class MicroHelloClient:
    """Calls ``helloworld`` ``Helloworld.Call`` at one address."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    async def connect(cls, address: str, *, traced: bool = False) -> MicroHelloClient:
        from micro.rpc import Client

        middleware: list[Any] = []
        if traced:
            from micro.trace import ClientTracing

            start_tracing("bench")
            middleware.append(ClientTracing("bench"))
        self = cls(Client(proxy=address, middleware=middleware))
        await self.call()
        return self

    async def call(self) -> None:
        rsp = await self._client.call("helloworld", "Helloworld.Call", {"name": "John"})
        assert rsp["msg"] == "Hello John"

    async def close(self) -> None:
        await self._client.close()


async def _serve(host: str, port: int, auth: bool = False, traced: bool = False) -> None:
    from main import Helloworld  # examples/helloworld/main.py

    from micro.rpc import Server, endpoints_of

    observers: list[Any] = []
    if traced:
        from micro.trace import ServerTracing

        start_tracing("helloworld")
        observers.append(ServerTracing("helloworld"))
    server = Server(observers=observers)
    server.add("helloworld", endpoints_of(Helloworld()))
    if auth:
        # A door as every service has one: tokens bound to this service, verified with
        # the key pair given in MICRO_AUTH_PRIVATE_KEY; the namespace's default rule; no
        # account revoked.
        import functools

        from micro.auth.base import DEFAULT_RULE, audience
        from micro.auth.door import Door
        from micro.auth.keys import KeyPair

        async def rules(namespace: str) -> list[Any]:
            return [DEFAULT_RULE]

        async def revoked(namespace: str) -> dict[str, str]:
            return {}

        verify = functools.partial(
            KeyPair.from_settings().verify_token, audience=audience("micro", "helloworld")
        )
        server.door = Door(verify, rules, revocations=revoked, namespace="micro")
    bound = await server.start(f"{host}:{port}")
    announce_ready(bound.host, bound.port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(grace=1)


def _serve_proxy(host: str, *, traced: bool = True) -> None:
    """Start ``micro server`` and helloworld as children; relay the proxy address.

    The server is the one every platform benchmark starts (:func:`bench._platform.start_platform`):
    a temporary home, every listener on a free loopback port (never the default ones, which
    a developer's own server may hold), its admin logged in, so the helloworld process,
    started by hand in that environment, registers as that developer. Whatever fails on
    the way takes both children down with it: no orphan server outlives this process.
    """
    from bench._platform import start_platform

    home = tempfile.mkdtemp(prefix="micro-bench-")
    children: list[subprocess.Popen[str]] = []
    start_watchdog(before_exit=lambda: stop())
    # Off: the server and helloworld record no spans (the proxy hop alone, as before tracing).
    server, env, _ = start_platform(home, extra_env={} if traced else {"MICRO_TRACE_SAMPLE": "0"})
    children.append(server)
    service: subprocess.Popen[str] | None = None

    def stop(*_: object) -> None:
        for proc in children:
            if proc.poll() is None:
                proc.terminate()
        for proc in children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(home, ignore_errors=True)

    try:
        env["MICRO_LOG_LEVEL"] = "info"
        service = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "helloworld" / "main.py")],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.insert(0, service)
        assert service.stderr is not None
        watchdog = threading.Timer(60, service.kill)
        watchdog.start()
        seen: list[str] = []
        for line in service.stderr:
            seen = [*seen[-19:], line]
            if "Registered [service] helloworld" in line:
                break
        else:
            raise RuntimeError("helloworld exited before it registered:\n" + "".join(seen))
        watchdog.cancel()
        # drain its log from now on, so it never blocks on a full pipe
        subprocess.Popen(["cat"], stdin=service.stderr, stdout=subprocess.DEVNULL)
    except BaseException:
        stop()
        raise

    def on_term(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    phost, _, pport = env["MICRO_PROXY"].rpartition(":")
    announce_ready(phost, int(pport))
    try:
        signal.pause()
    finally:
        stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "mode",
        choices=["serve", "serve-auth", "serve-traced", "serve-proxy", "serve-proxy-untraced"],
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    check_loopback(args.host)
    if args.mode in ("serve", "serve-auth", "serve-traced"):
        from micro.wire.transport import run

        start_watchdog()
        run(
            _serve(
                args.host,
                args.port,
                auth=args.mode == "serve-auth",
                traced=args.mode == "serve-traced",
            )
        )
    else:
        _serve_proxy(args.host, traced=args.mode == "serve-proxy")


if __name__ == "__main__":
    main()
