"""A ``micro server`` for the benchmarks that measure the platform end to end: started in a
temporary home on free ports, logged in as its admin, plus the CLI and filler services."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Mapping

__all__ = ["micro", "register_many", "start_platform"]

READY = "micro server ready: proxy "


def micro(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run the ``micro`` CLI; its stdout, or RuntimeError with its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "micro", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"micro {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def start_platform(
    home: str,
    *,
    log_level: str = "warning",
    extra_env: Mapping[str, str] | None = None,
    ready_timeout: float = 120.0,
) -> tuple[subprocess.Popen[str], dict[str, str], dict[str, str]]:
    """(the server process, the environment its clients need, its edges' addresses); the
    CLI of that environment is logged in as ``admin``.

    ``extra_env`` goes on top of the defaults (a cluster replica's profile, backends, name); a
    server not ready within ``ready_timeout`` seconds is killed, so no caller hangs on it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(
        MICRO_HOME=home,
        MICRO_PROXY_ADDRESS="127.0.0.1:0",
        MICRO_API_ADDRESS="127.0.0.1:0",
        MICRO_WEB_ADDRESS="127.0.0.1:0",
        MICRO_GRPC_ADDRESS="off",
        MICRO_ADMIN_PASSWORD="bench",
        MICRO_LOG_LEVEL=log_level,
    )
    env.update(extra_env or {})
    server = subprocess.Popen(
        [sys.executable, "-m", "micro", "server"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    watchdog = threading.Timer(ready_timeout, server.kill)
    watchdog.start()
    seen: list[str] = []
    try:
        for line in server.stdout:
            seen = [*seen[-19:], line]
            if line.startswith(READY):
                words = line[len(READY) :].split()
                env["MICRO_PROXY"] = words[0]
                edges = dict(zip(words[1::2], words[2::2], strict=False))
                break
        else:
            server.wait()
            raise RuntimeError(
                f"micro server exited before it was ready ({server.returncode}):\n" + "".join(seen)
            )
    finally:
        watchdog.cancel()
    # drain the server's output from now on, so it never blocks on a full pipe
    subprocess.Popen(["cat"], stdin=server.stdout, stdout=subprocess.DEVNULL)
    try:
        micro(env, "login", "--username", "admin", "--password", env["MICRO_ADMIN_PASSWORD"])
    except BaseException:
        server.kill()
        raise
    return server, env, edges


async def register_many(env: dict[str, str], count: int) -> None:
    """``count`` more services in the registry, each with a node and an endpoint."""
    os.environ.update(env)
    from micro.client import new_client
    from micro.registry.base import Endpoint, Node, Service
    from micro.registry.client import RPCRegistry
    from micro.settings import load

    client = new_client(load(), via_proxy=True)
    registry = RPCRegistry(client)
    try:
        room = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with room:
                await registry.register(
                    Service(
                        name=f"filler{i:04d}",
                        endpoints=[Endpoint(name=f"Filler{i:04d}.Call")],
                        nodes=[Node(id=f"filler{i:04d}-1", address=f"127.0.0.1:{20000 + i}")],
                    ),
                    ttl=3600,
                )

        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        await client.close()
