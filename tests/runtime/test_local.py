"""The local runtime inside an in-process server: restart limits and namespaces."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from micro import errors
from micro.runtime.base import Service
from micro.runtime.local import LocalRuntime
from micro.runtime.source import pack
from micro.server.app import MicroServer
from micro.settings import Settings

CRASHY = textwrap.dedent(
    """
    import asyncio
    import os

    import micro


    class Crashy:
        async def ping(self, n: int) -> int:
            return n


    async def main() -> None:
        service = micro.Service("crashy")
        service.handle(Crashy())
        await service.start()
        await asyncio.sleep(0.3)
        os._exit(1)  # a crash after it served


    asyncio.run(main())
    """
)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    (tmp_path / "home").mkdir()
    settings = Settings(
        home=tmp_path / "home",
        profile="test",
        proxy_address="127.0.0.1:0",
        admin_password="pw",
        register_ttl=3.0,
    )
    server = MicroServer(settings)
    await server.start()
    backend: LocalRuntime = server.backends["runtime"]
    backend.platform.grace = 2.0
    try:
        yield backend
    finally:
        await server.stop()


async def until(runtime: LocalRuntime, name: str, status: str, namespace: str = "micro") -> Service:
    async with asyncio.timeout(60):
        while True:
            [svc] = await runtime.read(name=name, namespace=namespace)
            if svc.status == status:
                return svc
            await asyncio.sleep(0.05)


async def upload(runtime: LocalRuntime, folder: Path, name: str, namespace: str = "micro") -> str:
    return await runtime.upload(name, "latest", pack(folder), namespace=namespace)


async def test_a_crash_loop_stops_at_the_restart_limit(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    runtime.platform.restart_limit = 1
    folder = tmp_path / "crashy"
    folder.mkdir()
    (folder / "main.py").write_text(CRASHY)
    source = await upload(runtime, folder, "crashy")
    await runtime.create(Service(name="crashy", source=source))
    failed = await until(runtime, "crashy", "error")
    assert failed.metadata["error"].startswith("instance 0 exited with code 1 2 times in a row")
    logs = [r.message async for r in runtime.logs("crashy", count=100)]
    assert "instance 0 exited with code 1; restarting in 1s" in logs


async def test_namespaces_are_apart(runtime: LocalRuntime, tmp_path: Path) -> None:
    folder = tmp_path / "crashy"
    folder.mkdir()
    (folder / "main.py").write_text("import time\ntime.sleep(60)\n")
    source = await upload(runtime, folder, "sleeper", namespace="foo")
    await runtime.create(Service(name="sleeper", source=source), namespace="foo")
    assert [s.name for s in await runtime.read(namespace="foo")] == ["sleeper"]
    assert await runtime.read(namespace="micro") == []
    with pytest.raises(errors.NotFound):
        await runtime.delete("sleeper", namespace="micro")
    with pytest.raises(errors.NotFound):
        runtime.logs("sleeper", namespace="micro")
    with pytest.raises(errors.BadRequest, match="no uploaded source"):
        await runtime.create(Service(name="sleeper", source=source), namespace="micro")
    # a process that never registers is "starting", never "running"
    [svc] = await runtime.read(namespace="foo")
    assert svc.status in ("pending", "building", "starting")
    await runtime.delete("sleeper", namespace="foo")
    assert await runtime.read(namespace="foo") == []


async def test_bad_requests(runtime: LocalRuntime) -> None:
    with pytest.raises(errors.BadRequest, match="invalid service name"):
        await runtime.create(Service(name="../x", source="source://x:latest"))
    with pytest.raises(errors.BadRequest, match="instances must be between 1 and 64"):
        await runtime.create(Service(name="x", source="source://x:latest", instances=0))
    with pytest.raises(errors.BadRequest, match="unknown source"):
        await runtime.create(Service(name="x", source="ftp-ish"))
    with pytest.raises(errors.NotFound):
        await runtime.update(Service(name="x"))


async def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    runtime.platform.grace = 0.5
    folder = tmp_path / "stubborn"
    folder.mkdir()
    (folder / "main.py").write_text(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring SIGTERM', flush=True)\n"
        "time.sleep(60)\n"
    )
    source = await upload(runtime, folder, "stubborn")
    await runtime.create(Service(name="stubborn", source=source))
    async with asyncio.timeout(30), runtime.logs("stubborn", follow=True) as logs:
        async for line in logs:
            if line.message == "ignoring SIGTERM":
                break
    pidfile = runtime.platform.layout.pids("micro", "stubborn", "latest") / "0.pid"
    pid = int(json.loads(pidfile.read_text())["pid"])
    await runtime.delete("stubborn")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
