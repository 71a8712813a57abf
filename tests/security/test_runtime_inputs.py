"""Issue 14, items 13, 15 and 20: what a namespace's admin hands the runtime.

- 13: an upload is a gzipped tar of a few hundred KB that unpacks to hundreds of MiB (a
  file of zeros, a sparse file, tens of thousands of empty files): the server refuses it
  at upload, before writing anything, and never unpacks it.
- 15: a ``file://`` git source is a repository on the server's own disk: only platform
  admins may run one, or any admin one under ``MICRO_RUNTIME_FILE_ROOTS``.
- 20: an environment variable over 128 KiB (execve's limit) used to leave the service
  "starting" forever: it is a 400 at ``micro run``/``update``, and a process that cannot
  be started at all is an error with the reason.

The uploads are sent the way ``micro run`` sends them, through ``runtime.Source.Upload``,
but with archives the CLI would never make.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

from tests._support import git
from tests.security._tenant import PROBE, Tenant, make_tenant, wait_running

from micro.testing import MicroServerProcess, start_server

UPLOAD = textwrap.dedent(
    """
    import asyncio, json, sys

    import micro.client
    from micro import errors
    from micro.runtime.base import Service
    from micro.runtime.client import RPCRuntime


    async def main() -> None:
        runtime = RPCRuntime(micro.client.default())
        data = sys.stdin.buffer.read()
        try:
            namespace = sys.argv[1]
            source = await runtime.upload("bomb", "latest", data, namespace=namespace)
            await runtime.create(Service(name="bomb", source=source), namespace=namespace)
        except errors.MicroError as exc:
            print(json.dumps({"code": exc.code, "detail": exc.detail}))
        else:
            print(json.dumps({"code": 200}))


    asyncio.run(main())
    """
)


def upload(tenant: Tenant, data: bytes) -> dict[str, object]:
    """Upload ``data`` as the source of service ``bomb`` and run it, as the tenant."""
    done = subprocess.run(
        [sys.executable, "-c", UPLOAD, tenant.namespace],
        env=tenant.env(),
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        main = tarfile.TarInfo("main.py")
        tar.addfile(main, io.BytesIO(b""))
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, made as they are read (a bomb costs no memory to build)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def zeros_bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("main.py"), io.BytesIO(b""))
        info = tarfile.TarInfo("data.bin")
        info.size = size
        tar.addfile(info, _Zeros(size))
    return buffer.getvalue()


def sparse_bomb(size: int) -> bytes:
    info = tarfile.TarInfo("GNUSparseFile.0/data.bin")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "data.bin",
        "GNU.sparse.realsize": str(size),
    }
    return archive((info, b"1\n0\n0\n".ljust(512, b"\0")))


def many_files(count: int) -> bytes:
    return archive(*((tarfile.TarInfo(f"f{i}"), b"") for i in range(count)))


def assert_nothing_kept(server: MicroServerProcess, tenant: Tenant) -> None:
    runtime = server.home / "server" / "runtime"
    for folder in ("work", "sources"):
        assert not (runtime / folder / tenant.namespace).exists()
    assert tenant.micro("status").stdout == ""


def test_an_upload_that_unpacks_too_big_is_refused_before_anything_is_written(
    micro_server: MicroServerProcess, tenant: Tenant
) -> None:
    mib = 1024 * 1024
    for data, reason in [
        (zeros_bomb(300 * mib), "the source unpacks to more than 256.0 MiB"),
        (sparse_bomb(300 * mib), "is not a file, folder or symlink"),
        (many_files(20_001), "the source holds more than 20000 files and folders"),
    ]:
        assert len(data) < mib  # a small upload...
        answer = upload(tenant, data)
        assert answer["code"] == 400, answer
        assert reason in str(answer["detail"])
        assert_nothing_kept(micro_server, tenant)
    # what micro run itself sends is still taken
    done = tenant.micro("run", str(PROBE), "--name", "probe", timeout=120)
    assert done.returncode == 0, done.stderr


def bare_repo(folder: Path) -> Path:
    """A bare git repository of the probe service at ``folder``."""
    work = folder.with_name(folder.name + "-work")
    shutil.copytree(PROBE, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "probe")
    git(folder.parent, "clone", "-q", "--bare", str(work), str(folder))
    return folder


def refused_source(tenant: Tenant, url: str) -> str:
    done = tenant.micro("run", url, "--name", "probe")
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    assert tenant.micro("status").stdout == ""
    return done.stderr


def test_file_sources_are_for_platform_admins(
    micro_server: MicroServerProcess, tenant: Tenant, tmp_path: Path
) -> None:
    # any repository on the server's disk, say one of the platform's own
    secret = bare_repo(tmp_path / "platform-only.git")
    reason = refused_source(tenant, f"file://{secret}")
    assert f"{secret} is not under a folder the server lets namespaces run file://" in reason
    assert "only platform admins may run it" in reason
    assert "only platform admins" in refused_source(tenant, f"file://localhost{secret}")
    assert "no host" in refused_source(tenant, f"file://elsewhere{secret}")
    # the platform's admin may
    done = micro_server.micro("-n", tenant.namespace, "run", f"file://{secret}", timeout=120)
    assert done.returncode == 0, done.stderr


def test_file_sources_under_the_configured_roots(tmp_path: Path) -> None:
    roots = tmp_path / "git"
    allowed = bare_repo(roots / "probe.git")
    outside = bare_repo(tmp_path / "outside.git")
    (roots / "link.git").symlink_to(outside)
    server = start_server(tmp_path / "home", env={"MICRO_RUNTIME_FILE_ROOTS": str(roots)})
    try:
        tenant = make_tenant(server, tmp_path)
        for url in (
            f"file://{outside}",
            f"file://{roots}/../outside.git",
            f"file://{roots}/%2e%2e/outside.git",
            f"file://{roots}/link.git",
        ):
            assert "only platform admins may run it" in refused_source(tenant, url), url
        done = tenant.micro("run", f"file://{allowed}", "--name", "probe", timeout=120)
        assert done.returncode == 0, done.stderr
        wait_running(tenant.micro, "probe")
    finally:
        server.stop()


RUN = textwrap.dedent(
    """
    import asyncio, json, sys

    import micro.client
    from micro import errors
    from micro.runtime.base import Service
    from micro.runtime.client import RPCRuntime
    from micro.runtime.source import pack


    async def main() -> None:
        namespace, folder, how = sys.argv[1:4]
        env = json.loads(sys.stdin.read())
        runtime = RPCRuntime(micro.client.default())
        try:
            source = await runtime.upload("probe", "latest", pack(Path(folder)), namespace=namespace)
            service = Service(name="probe", source=source, env=env)
            if how == "create":
                await runtime.create(service, namespace=namespace)
            else:
                await runtime.update(service, namespace=namespace)
        except errors.MicroError as exc:
            print(json.dumps({"code": exc.code, "detail": exc.detail}))
        else:
            print(json.dumps({"code": 200}))


    from pathlib import Path

    asyncio.run(main())
    """
)


def run_with_env(tenant: Tenant, env: dict[str, str], how: str = "create") -> dict[str, object]:
    """``Runtime.Create`` (or ``Update``) of the probe with ``env``, as the tenant's admin:
    what the API takes, beyond what a command line could carry."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, tenant.namespace, str(PROBE), how],
        env=tenant.env(),
        input=json.dumps(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_an_environment_too_big_for_a_process_is_a_bad_request(tenant: Tenant) -> None:
    big = "x" * (128 * 1024)
    answer = run_with_env(tenant, {"BIG": big})
    assert answer["code"] == 400, answer
    assert "environment variable BIG is too big (128 KiB)" in str(answer["detail"])
    assert "at most 128 KiB per variable" in str(answer["detail"])
    answer = run_with_env(tenant, {f"V{i}": "x" * (100 * 1024) for i in range(11)})
    assert answer["code"] == 400, answer
    assert "the environment variables are too big (1100 KiB)" in str(answer["detail"])
    assert run_with_env(tenant, {"NUL": "a\0b"})["code"] == 400
    assert tenant.micro("status").stdout == ""

    # an update is checked too, and leaves the running service as it was
    assert run_with_env(tenant, {"SMALL": "1"})["code"] == 200
    wait_running(tenant.micro, "probe")
    answer = run_with_env(tenant, {"BIG": big}, how="update")
    assert answer["code"] == 400, answer
    assert tenant.probe("import os\nresult = os.environ.get('SMALL')") == "1"


def test_a_process_that_cannot_be_started_is_an_error_with_the_reason(
    micro_server: MicroServerProcess, tenant: Tenant
) -> None:
    # a smaller stack limit leaves less room for the environment than the runtime checks
    # for (a quarter of it: 64 KiB here): exec itself fails
    limit = subprocess.run(
        ["prlimit", f"--pid={micro_server.process.pid}", "--stack=262144"], capture_output=True
    )
    assert limit.returncode == 0, limit.stderr
    assert run_with_env(tenant, {f"V{i}": "x" * (60 * 1024) for i in range(4)})["code"] == 200
    deadline = time.monotonic() + 60
    while True:
        done = tenant.micro("status", "probe", "-o", "json")
        row = json.loads(done.stdout)
        if row["status"] in ("error", "running"):
            break
        assert time.monotonic() < deadline, f"still {row['status']}"
        time.sleep(0.2)
    assert row["status"] == "error"
    assert "environment is too large" in row["metadata"]["error"]
