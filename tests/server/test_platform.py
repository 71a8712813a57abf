"""micro server as a whole: blocks alone, plugins and profiles, the proxy under failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests._support import HELLOWORLD, free_port

import micro
from micro import errors
from micro.rpc import Client
from micro.server import plugins, profiles
from micro.settings import load
from micro.testing import MicroServerProcess

DYING = """
import os
import micro

class Dying:
    async def call(self, req: dict) -> dict:
        os._exit(3)

service = micro.Service("dying")
service.handle(Dying())
service.run()
"""


def _micro(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "micro", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(MICRO_HOME=str(tmp_path / "home"), **extra)
    return env


async def test_a_block_alone_admits_calls_through_the_platforms_auth(
    micro_server: MicroServerProcess,
) -> None:
    proc = _micro("service", "store", "--address", "127.0.0.1:0", env=micro_server.env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("micro service store ready: "), line
        address = line.split()[-1]
        anonymous = Client(proxy=address)
        with pytest.raises(errors.Unauthorized):
            await anonymous.call("store", "Store.Write", {"record": {"key": "k", "value": b""}})
        await anonymous.close()
        token = micro_server.micro("user", "token").stdout.strip()
        admin = Client(proxy=address, metadata={"authorization": f"Bearer {token}"})
        await admin.call("store", "Store.Write", {"record": {"key": "k", "value": b"v"}})
        rsp = await admin.call("store", "Store.Read", {"key": "k"})
        assert rsp["records"][0]["value"] == b"v"
        assert await admin.call("store", "Debug.Health") == {"status": "ok"}
        await admin.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


async def test_a_block_alone_without_auth_refuses_calls(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, MICRO_PROXY=f"127.0.0.1:{free_port()}")
    proc = _micro("service", "registry", "--address", "127.0.0.1:0", env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("micro service registry ready: "), line
        client = Client(proxy=line.split()[-1])
        with pytest.raises(errors.ServiceUnavailable):
            await client.call("registry", "Registry.ListServices", {})
        await client.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_unknown_block_is_a_clear_error(tmp_path: Path) -> None:
    proc = _micro("service", "nosuch", env=_clean_env(tmp_path))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "unknown block 'nosuch'" in err.lower()
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MICRO_REGISTRY", "bogus", "Unknown registry plugin 'bogus'; known: etcd, memory, rpc"),
        ("MICRO_PROFILE", "nope", "Unknown profile 'nope'; known: cluster, local, test"),
    ],
)
def test_unknown_plugin_or_profile_names_the_known_ones(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = _clean_env(tmp_path, MICRO_PROXY_ADDRESS="127.0.0.1:0", **{variable: value})
    proc = _micro("server", env=env)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert message in err
    assert "Traceback" not in err


def test_plugin_table_and_profiles() -> None:
    assert plugins.known("registry") == ["etcd", "memory", "rpc"]
    assert plugins.load("registry", "memory").__name__ == "MemoryRegistry"
    with pytest.raises(ValueError, match="known: etcd, memory, rpc"):
        plugins.load("registry", "nope")
    settings = load({"MICRO_HOME": "/tmp", "MICRO_PROFILE": "test"})
    assert profiles.plugin_for("registry", settings) == "memory"
    overridden = load({"MICRO_HOME": "/tmp", "MICRO_REGISTRY": "custom"})
    assert profiles.plugin_for("registry", overridden) == "custom"


async def test_service_dying_mid_call_fails_the_call_at_once(
    micro_env: MicroServerProcess, tmp_path: Path
) -> None:
    script = tmp_path / "dying.py"
    script.write_text(DYING)
    micro_env.start_service(script, name="dying")
    for via_proxy in (True, False):
        client = micro.client.new_client(via_proxy=via_proxy)
        with pytest.raises(errors.ServiceUnavailable):
            await client.call("dying", "Dying.Call", {}, timeout=30)
        await client.close()
        if via_proxy:
            micro_env.start_service(script, name="dying")


async def test_bidi_stream_through_the_proxy(micro_env: MicroServerProcess) -> None:
    micro_env.start_service(HELLOWORLD, name="helloworld")
    client = micro.client.new_client(via_proxy=True)
    async with await client.stream("helloworld", "Helloworld.PingPong") as stream:
        for stroke in range(300):  # past the flow-control window of both legs
            await stream.send({"stroke": stroke})
            assert await stream.recv() == {"stroke": stroke}
        stream.close_send()
        assert [m async for m in stream] == []
    await client.close()
