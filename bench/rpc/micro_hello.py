"""Our helloworld ``Call`` served two ways, for the RPC benchmark.

``serve``        the helloworld handler on a bare ``micro.rpc.Server`` (what a service's
                 node is): the client calls it directly.
``serve-proxy``  a real ``micro server`` plus a real helloworld service process; prints
                 the proxy's address, so the client's calls go through the proxy hop.
``serve-traced`` ``serve`` with tracing on, sampled 100% (a service's default): the
                 server's tracing middleware, spans exported in batches by the recorder
                 (encoded as ``Trace.Record`` would send them; the socket write is left out).

Both print ``READY <host:port>``. The client sends msgpack, the default of Python callers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
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

    middleware: list[Any] = []
    if traced:
        from micro.trace import ServerTracing

        start_tracing("helloworld")
        middleware.append(ServerTracing("helloworld"))
    server = Server(middleware=middleware)
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


def _serve_proxy(host: str) -> None:
    """Start ``micro server`` and helloworld as children; relay the proxy address."""
    home = tempfile.mkdtemp(prefix="micro-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(MICRO_HOME=home, MICRO_PROXY_ADDRESS=f"{host}:0", MICRO_LOG_LEVEL="warning")
    server = subprocess.Popen(
        [sys.executable, "-m", "micro", "server"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    proxy = ""
    for line in server.stdout:
        if line.startswith("micro server ready: proxy "):
            proxy = line.split()[-1]
            break
    env["MICRO_PROXY"] = proxy
    env["MICRO_LOG_LEVEL"] = "info"
    service = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "helloworld" / "main.py")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert service.stderr is not None
    for line in service.stderr:
        if "Registered [service] helloworld" in line:
            break

    def stop(*_: object) -> None:
        for proc in (service, server):
            proc.terminate()
        for proc in (service, server):
            proc.wait(timeout=10)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    phost, _, pport = proxy.rpartition(":")
    announce_ready(phost, int(pport))
    signal.pause()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["serve", "serve-auth", "serve-traced", "serve-proxy"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    check_loopback(args.host)
    start_watchdog()
    if args.mode in ("serve", "serve-auth", "serve-traced"):
        from micro.wire.transport import run

        run(
            _serve(
                args.host,
                args.port,
                auth=args.mode == "serve-auth",
                traced=args.mode == "serve-traced",
            )
        )
    else:
        _serve_proxy(args.host)


if __name__ == "__main__":
    main()
