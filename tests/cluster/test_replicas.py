"""Three replicas share one platform: what is done through one is known to the others.

An account made through one logs in through another; a service run through one answers
through another's gateway, shows in every replica's ``micro status``, and is killed through
a third; config set through one reaches a watcher attached to another; a consumer group
spans replicas; a rule granted through one admits calls through another.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._backends import Etcd, running
from tests._support import HELLOWORLD, failed, http, ok
from tests.cluster._cluster import replicas

from micro.client import new_client
from micro.config.client import RPCConfig
from micro.events.client import RPCStream
from micro.settings import load
from micro.testing import MicroServerProcess


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[MicroServerProcess]]:
    with running(Etcd.create()) as etcd, replicas(tmp_path_factory.mktemp("c"), etcd.url) as rs:
        yield rs


def _until(check: object, what: str, timeout: float = 30.0) -> None:
    """Poll ``check()`` until it is true; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout}s", pytrace=False)


def _status(server: MicroServerProcess, name: str) -> list[dict[str, object]]:
    out = ok(server.micro("status", name, "--output", "json"))
    return [json.loads(line) for line in out.splitlines()]


def test_an_account_made_through_one_replica_logs_in_through_another(
    cluster: list[MicroServerProcess], tmp_path: Path
) -> None:
    r0, r1, _ = cluster
    name = f"alice{uuid.uuid4().hex[:6]}"
    ok(r0.micro("auth", "create", "account", "--secret", "s3cret-pw", name))
    client = r1.env(MICRO_HOME=str(tmp_path / "client"))
    ok(r1.micro("login", "--username", name, "--password", "s3cret-pw", env=client))
    assert name in ok(r1.micro("user", env=client))
    wrong = r1.micro("login", "--username", name, "--password", "wrong", env=client)
    assert "Account not found or secret not correct" in failed(wrong, 2)


def test_a_service_run_through_one_replica(cluster: list[MicroServerProcess]) -> None:
    r0, r1, r2 = cluster
    ok(r0.micro("run", str(HELLOWORLD.parent), timeout=120))

    # callable through another replica's gateway
    status, _, body = http("POST", f"{r1.api}/helloworld/call", b'{"name":"John"}')
    assert (status, json.loads(body)) == (200, {"msg": "Hello John"})

    # every replica's status shows it running, on the replica it was run through
    # (another replica's status is the one r0 last published: at most a second old)
    def shown_running_on_r0(server: MicroServerProcess) -> bool:
        [svc] = _status(server, "helloworld")
        return svc["status"] == "running" and svc["metadata"]["replica"] == "r0"  # type: ignore[index]

    for server in cluster:
        _until(lambda s=server: shown_running_on_r0(s), f"helloworld running on r0 per {server}")

    # its logs are on r0; another replica says so
    assert "runs on replica r0" in failed(r1.micro("logs", "helloworld"), 4)
    assert ok(r0.micro("logs", "helloworld"))

    # killed through a third: its replica stops it, every replica forgets it
    ok(r2.micro("kill", "helloworld"))
    _until(lambda: not _status(r0, "helloworld"), "helloworld forgotten by r0")
    _until(
        lambda: http("POST", f"{r1.api}/helloworld/call", b"{}")[0] == 404,
        "helloworld gone from the registry",
    )


async def test_config_set_through_one_replica_reaches_a_watcher_on_another(
    cluster: list[MicroServerProcess],
) -> None:
    r0, _, r2 = cluster
    key = f"cluster.flag{uuid.uuid4().hex[:6]}"
    client = new_client(load(r2.env()), via_proxy=True)
    try:
        watcher = RPCConfig(client).watch(key)
        async with watcher:
            first = await asyncio.wait_for(watcher.next(), 10)
            assert first.data is None
            done = await asyncio.to_thread(r0.micro, "config", "set", key, "on")
            ok(done)
            seen = await asyncio.wait_for(watcher.next(), 10)
            assert seen.data == "on"
    finally:
        await client.close()


async def test_a_consumer_group_spans_replicas(cluster: list[MicroServerProcess]) -> None:
    topic = f"orders{uuid.uuid4().hex[:6]}"
    clients = [new_client(load(server.env()), via_proxy=True) for server in cluster]
    got: dict[str, list[bytes]] = {"r0": [], "r1": []}

    async def consume(name: str, stream: RPCStream) -> None:
        async with stream.consume(topic, group="workers", offset=1) as consumer:
            async for delivery in consumer:
                got[name].append(delivery.event.payload)

    try:
        publisher = RPCStream(clients[2])
        await publisher.publish(topic, b"0")  # the group reads the topic from its start
        tasks = [
            asyncio.create_task(consume(name, RPCStream(clients[n]))) for n, name in enumerate(got)
        ]
        sent = [b"0"]
        # publish through the third replica until both members have had events (bounded)
        for n in range(1, 400):
            sent.append(str(n).encode())
            await publisher.publish(topic, sent[-1])
            if n >= 20 and all(got.values()):
                break
            await asyncio.sleep(0.01)
        for _ in range(200):
            if len(got["r0"]) + len(got["r1"]) >= len(sent):
                break
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        both = got["r0"] + got["r1"]
        assert sorted(both) == sorted(sent), "every event once, between the two members"
        assert got["r0"], "the member on r0 had a share"
        assert got["r1"], "the member on r1 had a share"
    finally:
        for client in clients:
            await client.close()


def test_a_rule_made_through_one_replica_holds_on_another(
    cluster: list[MicroServerProcess],
) -> None:
    r0, r1, _ = cluster
    rule = f"nonetwork{uuid.uuid4().hex[:6]}"
    # An account the rule binds (a namespace's admins always pass its platform services).
    reader = f"reader{uuid.uuid4().hex[:6]}"
    ok(r0.micro("auth", "create", "account", "--secret", "s3cret-pw", reader))
    made = ok(r1.micro("auth", "create", "token", "--id", reader, "--secret", "s3cret-pw"))
    token = json.loads(made.removeprefix("Token created: "))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    def network_answers(status: int) -> bool:
        return http("POST", f"{r1.api}/network/services", b"{}", auth)[0] == status

    assert network_answers(200)
    ok(
        r0.micro(
            "auth",
            "create",
            "rule",
            "--scope",
            "*",
            "--resource",
            "service:network:*",
            "--access",
            "denied",
            "--priority",
            "100",
            rule,
        )
    )
    try:
        _until(lambda: network_answers(403), "r0's rule taking effect on r1", 10)
    finally:
        ok(r0.micro("auth", "delete", "rule", rule))
    _until(lambda: network_answers(200), "the rule's removal taking effect on r1", 10)
