"""Losing a replica: one of three is SIGKILLed while a client keeps writing records,
publishing events and calling a service (which lived on the dead replica) through
another replica's gateway.

No acknowledged write or event is lost; the service answers again once a survivor has
adopted it; and ``micro status``, asked of a third replica all along, never claims the
service runs on the dead replica.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._backends import Etcd, running
from tests._support import HELLOWORLD, http, ok
from tests.cluster._cluster import replicas

from micro.client import new_client
from micro.events.client import RPCStream
from micro.settings import load
from micro.testing import MicroServerProcess

_LOAD_LIMIT = 60.0
"""Seconds the load may run at most (it stops sooner, once the service is back)."""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[MicroServerProcess]]:
    with running(Etcd.create()) as etcd, replicas(tmp_path, etcd.url) as rs:
        yield rs


def _post(server: MicroServerProcess, path: str, body: object, token: str) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, _, answer = http("POST", f"{server.api}{path}", json.dumps(body).encode(), headers)
    return status, answer


def _statuses(server: MicroServerProcess) -> list[tuple[str, str]]:
    """(status, replica) of helloworld as ``micro status`` on ``server`` shows it."""
    done = server.micro("status", "helloworld", "--output", "json")
    if done.returncode != 0:
        return [("cli-error: " + done.stderr.strip(), "")]
    found = [json.loads(line) for line in done.stdout.splitlines()]
    return [(s.get("status", ""), s.get("metadata", {}).get("replica", "")) for s in found]


def test_sigkill_a_replica_under_load(cluster: list[MicroServerProcess]) -> None:
    r0, r1, r2 = cluster
    ok(r0.micro("run", str(HELLOWORLD.parent), timeout=120))
    token = ok(r1.micro("user", "token")).strip()
    assert _post(r1, "/helloworld/call", {"name": "x"}, token)[0] == 200

    topic = f"loss{uuid.uuid4().hex[:8]}"
    writes: dict[str, str] = {}
    events: list[str] = []
    calls_after_kill: list[int] = []
    seen: list[tuple[str, str]] = []
    watching = threading.Event()
    done = threading.Event()

    def watch_status() -> None:  # a third replica's view, all through the loss
        watching.wait()
        while not done.is_set():
            seen.extend(_statuses(r2))

    watcher = threading.Thread(target=watch_status, daemon=True)
    watcher.start()
    deadline = time.monotonic() + _LOAD_LIMIT
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            key, value = f"loss/{n}", f"value {n}"
            record = {"key": key, "value": base64.b64encode(value.encode()).decode()}
            if _post(r1, "/store/write", {"record": record}, token)[0] == 200:
                writes[key] = value
            payload = base64.b64encode(str(n).encode()).decode()
            if (
                _post(r1, "/events/stream/publish", {"topic": topic, "payload": payload}, token)[0]
                == 200
            ):
                events.append(str(n))
            status, _ = _post(r1, "/helloworld/call", {"name": str(n)}, token)
            if n == 20:
                r0.process.kill()  # SIGKILL: no goodbye, its lease has to lapse
                r0.process.wait()
                watching.set()
            elif n > 20:
                calls_after_kill.append(status)
                if calls_after_kill[-5:] == [200] * 5:
                    break  # adopted and answering: the load has made its point
            time.sleep(0.02)
    finally:
        done.set()
        watcher.join(timeout=30)

    assert calls_after_kill[-5:] == [200] * 5, f"helloworld never came back: {calls_after_kill}"
    assert len(writes) == n, "with PostgreSQL up, every write through r1 is acknowledged"

    # no acknowledged write lost: every one reads back, through another replica
    for key, value in writes.items():
        status, answer = _post(r2, "/store/read", {"key": key}, token)
        assert status == 200, answer
        [stored] = json.loads(answer)["records"]
        assert base64.b64decode(stored["value"]).decode() == value

    # no acknowledged event lost
    async def stored_events() -> list[str]:
        client = new_client(load(r2.env()), via_proxy=True)
        try:
            found = await RPCStream(client).read(topic, limit=10_000)
        finally:
            await client.close()
        return [e.payload.decode() for e in found]

    assert sorted(asyncio.run(stored_events()), key=int) == events

    # micro status told the truth: never "running on r0" once r0 was dead; first the
    # service waited for adoption, then it ran on a survivor
    assert seen, "the status was read while r0 was gone"
    assert all(not (s == "running" and r == "r0") for s, r in seen), seen
    assert ("pending", "r0") in seen, seen
    [(status, replica)] = _statuses(r2)
    assert status == "running"
    assert replica in ("r1", "r2")
    assert _statuses(r1) == [(status, replica)]
