"""micro.testing's session server: one server for the run, a namespace and its admin per test."""

from __future__ import annotations

import msgspec
import pytest

import micro
from micro import errors
from micro.testing import MicroNamespace, MicroServerProcess, serving, wait_for_service

_seen: dict[str, int] = {}


class Echo(msgspec.Struct):
    text: str


class Echoer:
    async def say(self, req: Echo) -> Echo:
        return Echo(text=req.text)


@pytest.mark.parametrize("run", [1, 2])
def test_every_test_shares_one_server_in_a_namespace_of_its_own(
    run: int, micro_namespace: MicroNamespace, micro_session_server: MicroServerProcess
) -> None:
    _seen.setdefault("server", micro_session_server.process.pid)
    assert micro_session_server.process.pid == _seen["server"]
    assert micro_namespace.name not in _seen.values()
    _seen[f"namespace-{run}"] = micro_namespace.name  # type: ignore[assignment]
    user = micro_namespace.micro("user")
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() == "admin"


async def test_the_process_acts_in_its_namespace_as_its_admin(
    micro_namespace_env: MicroNamespace,
) -> None:
    ns = micro_namespace_env
    await micro.store.write("greeting", "hello")  # the namespace's database, no set-up
    [record] = await micro.store.read("greeting", database=ns.name, table="micro")
    assert record.value == b"hello"
    await micro.events.publish("orders", {"id": 1})
    [event] = await micro.events.read("orders")
    assert event.payload == b'{"id":1}'
    await micro.config.set("feature.beta", True)
    # An admin of a namespace is no admin of another, nor of the platform.
    with pytest.raises(errors.Forbidden):
        await micro.store.read("anything", database="micro", table="t")
    listed = ns.micro("auth", "list", "accounts")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["admin"]


async def test_a_service_served_in_the_test_registers_in_its_namespace(
    micro_namespace_env: MicroNamespace,
) -> None:
    service = micro.Service("echo")
    service.handle(Echoer())
    async with serving(service):
        assert service.namespace == micro_namespace_env.name
        await wait_for_service("echo", domain=micro_namespace_env.name)
        rsp = await micro.client.call("echo", "Echoer.Say", Echo(text="hi"), response_type=Echo)
    assert rsp == Echo(text="hi")
