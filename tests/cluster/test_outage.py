"""Outages of the cluster's backends under a running ``micro server`` (issue 9).

The server runs with every block on a backend of this module's own (PostgreSQL for the
store, and so config and auth; NATS JetStream for the broker and events; etcd for the
registry), never the shared ones other tests use, because each test stops one of them. For
each backend the test:

1. writes data through the platform and has it acknowledged;
2. stops the backend; what needs it fails at once with one clear line naming it (the CLI:
   exit 127, no traceback; the gateway: a 5xx JSON error, within a timeout), and what does
   not need it goes on working;
3. starts it again (same port, same data) and, without touching the server, polls until
   everything works: new writes succeed, every acknowledged record is there unchanged,
   subscribers and consumers opened before the outage receive again, services come back.

Besides: a registry watch that outlives etcd coming back with an older history (its data
lost), and calls to a known service through a long etcd outage (served from stale routes).

One instance of each backend serves the whole module; each test has its own server, with
its own ``MICRO_PREFIX`` (schema, subjects, keys), so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from tests._backends import Etcd, Nats, Postgres, running
from tests._support import HELLOWORLD, failed, http, ok

import micro
import micro.broker
import micro.client
import micro.events
from micro import errors
from micro.registry.base import Node, Service
from micro.registry.etcd import EtcdRegistry
from micro.testing import MicroServerProcess, serving, start_server

_RECOVERY = 30.0
"""Seconds a backend back up may take until the platform works again (bounded polls)."""
_OUTAGE = 30.0
"""How long etcd stays away while known services are called."""
_GATEWAY_TIMEOUT = 15.0
"""An HTTP request to the gateway while a backend is away must answer within this."""

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running(Postgres.create()) as backend:
        yield backend


@pytest.fixture(scope="module")
def nats() -> Iterator[Nats]:
    with running(Nats.create()) as backend:
        yield backend


@pytest.fixture(scope="module")
def etcd() -> Iterator[Etcd]:
    with running(Etcd.create()) as backend:
        yield backend


@pytest.fixture
def server(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: Postgres, nats: Nats, etcd: Etcd
) -> Iterator[MicroServerProcess]:
    """A ``micro server`` with every block on this module's backends (each named, not
    through a profile), under a prefix of its own (or the one given as the fixture's
    parameter)."""
    env = {
        "MICRO_STORE": "postgres",
        "MICRO_STORE_ADDRESS": postgres.url,
        "MICRO_BROKER": "nats",
        "MICRO_BROKER_ADDRESS": nats.url,
        "MICRO_EVENTS": "nats",
        "MICRO_EVENTS_ADDRESS": nats.url,
        "MICRO_REGISTRY": "etcd",
        "MICRO_REGISTRY_ADDRESS": etcd.url,
        "MICRO_PREFIX": getattr(request, "param", None) or f"t{uuid.uuid4().hex[:12]}",
    }
    server = start_server(tmp_path / "home", env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def platform(server: MicroServerProcess, monkeypatch: pytest.MonkeyPatch) -> MicroServerProcess:
    """This process's ``micro.client`` (and in-process services) pointed at ``server``."""
    for key, value in server.env().items():
        if key.startswith("MICRO_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("MICRO_SERVICE_ADDRESS", "127.0.0.1:0")
    return server


# --------------------------------------------------------------------------- helpers


def _until(
    server: MicroServerProcess,
    args: tuple[str, ...],
    done: Callable[[subprocess.CompletedProcess[str]], bool] = lambda r: r.returncode == 0,
) -> subprocess.CompletedProcess[str]:
    """Run ``micro <args>`` until ``done`` says so (by default: until it succeeds), for at
    most ``_RECOVERY`` seconds; fails with its last output otherwise."""
    deadline = time.monotonic() + _RECOVERY
    while True:
        result = server.micro(*args)
        if done(result):
            return result
        if time.monotonic() >= deadline:
            pytest.fail(
                f"micro {' '.join(args)}: not as wanted within {_RECOVERY} s; last exit "
                f"{result.returncode}: {result.stdout.strip()!r} {result.stderr.strip()!r}",
                pytrace=False,
            )
        time.sleep(0.2)


def _unavailable(server: MicroServerProcess, *args: str) -> str:
    """The one line a command fails with because a backend is away (exit 127: an error
    the platform answered with, so the server itself was reachable)."""
    return failed(server.micro(*args), 127)


def _gateway(
    server: MicroServerProcess, path: str, body: object, token: str
) -> tuple[int, dict[str, object]]:
    """POST JSON to the gateway as the CLI's user; (status, JSON answer), bounded."""
    status, headers, data = http(
        "POST",
        server.api + path,
        json.dumps(body),
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=_GATEWAY_TIMEOUT,
    )
    assert headers.get("content-type", "").startswith("application/json"), (status, data)
    answer = json.loads(data)
    assert isinstance(answer, dict), answer
    return status, answer


def _works(server: MicroServerProcess, args: tuple[str, ...]) -> str:
    """The stdout of a command that must succeed."""
    return ok(server.micro(*args))


def _token(server: MicroServerProcess) -> str:
    return ok(server.micro("user", "token")).strip()


def _events(server: MicroServerProcess, topic: str) -> list[dict[str, object]]:
    """Every stored event of ``topic``, read back through the CLI."""
    out = ok(server.micro("events", "consume", topic))
    return [json.loads(line) for line in out.splitlines()]


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "crashed"])
def test_a_postgres_outage(server: MicroServerProcess, postgres: Postgres, crash: bool) -> None:
    """Stopped, PostgreSQL ends its sessions; crashed (immediate shutdown, no checkpoint),
    they just break, and it recovers from its log: acknowledged writes survive both."""
    records = {f"user/{n}": f"value {n}" for n in range(5)}
    for key, value in records.items():
        ok(server.micro("store", "write", key, value))
    ok(server.micro("config", "set", "db.port", "5432"))
    ok(server.micro("config", "set", "db.password", "s3cret", "--secret"))
    server.start_service(HELLOWORLD, name="helloworld")
    # Called once before: the doors have the rules (kept in the store) cached by then.
    assert "Hello PG" in ok(server.micro("call", "helloworld", "Helloworld.Call", '{"name":"PG"}'))
    token = _token(server)
    where = f"PostgreSQL store at {postgres.url}"

    with postgres.down(kill=crash):
        for args in (
            ("store", "read", "user/1"),
            ("store", "write", "user/9", "lost"),
            ("store", "list"),
            ("config", "get", "db.port"),
            ("config", "set", "db.host", "x"),
        ):
            line = _unavailable(server, *args)
            assert line.startswith(f"{where} is not reachable"), (args, line)
        status, answer = _gateway(server, "/store/read", {"key": "user/1"}, token)
        assert status == 503, answer
        assert str(answer["detail"]).startswith(where), answer
        # What needs no store still works: a call to a service, an event.
        assert "Hello PG" in ok(
            server.micro("call", "helloworld", "Helloworld.Call", '{"name":"PG"}')
        )
        ok(server.micro("events", "publish", "pg-down", '{"n":1}'))

    _until(server, ("store", "read", "user/1"))
    ok(server.micro("store", "write", "user/after", "written after"))
    for key, value in records.items():
        assert ok(server.micro("store", "read", key)) == f"{value}\n"
    assert ok(server.micro("store", "list")).split() == sorted([*records, "user/after"])
    # The write refused during the outage is not there.
    assert failed(server.micro("store", "read", "user/9"), 1) == "Not found"
    assert json.loads(ok(server.micro("config", "get", "db"))) == {
        "password": "[secret]",
        "port": 5432,
    }
    assert ok(server.micro("config", "get", "db.password", "--secret")) == "s3cret\n"
    ok(server.micro("config", "set", "db.host", "after"))
    assert ok(server.micro("config", "get", "db.host")) == "after\n"
    status, answer = _gateway(server, "/store/read", {"key": "user/2"}, token)
    assert status == 200, answer


# --------------------------------------------------------------------------- NATS


class Ping(msgspec.Struct):
    n: int


async def _heard(publish: Callable[[], Awaitable[object]], got: asyncio.Queue[int], n: int) -> None:
    """Broker message ``n`` published until it arrives in ``got``: after a start or an
    outage, a subscription is in place again only a moment later. Bounded."""
    async with asyncio.timeout(_RECOVERY):
        while True:
            with contextlib.suppress(errors.ServiceUnavailable):
                await publish()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        while await got.get() != n:
                            pass
                        return
            await asyncio.sleep(0.2)


async def _stored(topic: str, ping: Ping) -> micro.events.Event:
    """``ping`` published as an event once NATS takes it (publishing only once it does:
    an event is stored for good, so no retry may add a second). Bounded."""
    async with asyncio.timeout(_RECOVERY):
        while True:
            try:
                return await micro.events.publish(topic, ping)
            except errors.ServiceUnavailable as exc:
                if "may have been stored" in exc.detail:
                    pytest.fail(f"the outcome of publishing {ping} is unknown: {exc.detail}")
            await asyncio.sleep(0.2)


# The default prefix, as most servers have it (and only this test, on this NATS).
@pytest.mark.parametrize("server", ["micro"], indirect=True)
async def test_a_nats_outage(platform: MicroServerProcess, nats: Nats) -> None:
    server = platform
    # One name for a broker topic and an event topic: neither may see the other's.
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    listener = micro.Service("listener")
    heard: asyncio.Queue[int] = asyncio.Queue()
    consumed: asyncio.Queue[int] = asyncio.Queue()

    @listener.subscribe(topic)
    async def hear(ping: Ping) -> None:
        heard.put_nowait(ping.n)

    @listener.consume(topic, group="billing", offset=1)
    async def bill(ping: Ping) -> None:
        consumed.put_nowait(ping.n)

    async with serving(listener):
        await _heard(lambda: micro.broker.publish(topic, Ping(1)), heard, 1)
        before = [await micro.events.publish(topic, Ping(n)) for n in (1, 2)]
        async with asyncio.timeout(_RECOVERY):
            assert [await consumed.get() for _ in before] == [1, 2]
        where = f"NATS JetStream at {nats.url} is not reachable"
        token = await asyncio.to_thread(_token, server)

        await asyncio.to_thread(nats.stop, kill=True)
        try:
            # Once the server has seen the connection go (a call in flight as it went
            # fails too, at once, but might still have been stored), nothing is sent.
            with pytest.raises(errors.ServiceUnavailable) as caught:
                await micro.events.read(topic)
            assert caught.value.detail.startswith(where), caught.value.detail
            with pytest.raises(errors.ServiceUnavailable) as caught:
                await micro.events.publish(topic, Ping(3))
            assert caught.value.detail.startswith(where), caught.value.detail
            with pytest.raises(errors.ServiceUnavailable) as caught:
                await micro.broker.publish(topic, Ping(3))
            assert caught.value.detail.startswith(f"NATS broker at {nats.url}")
            for args in (("events", "publish", topic, '{"n":3}'), ("events", "consume", topic)):
                line = await asyncio.to_thread(_unavailable, server, *args)
                assert line.startswith(where), (args, line)
            status, answer = await asyncio.to_thread(
                _gateway, server, "/events/store/read", {"topic": topic}, token
            )
            assert status == 503, answer
            assert str(answer["detail"]).startswith(where), answer
            # What needs no NATS still works.
            await asyncio.to_thread(_works, server, ("store", "write", "during", "outage"))
            await asyncio.to_thread(_works, server, ("config", "set", "during", "outage"))
        finally:
            await asyncio.to_thread(nats.start)

        # The subscription and the consumer opened before the outage receive again.
        await _heard(lambda: micro.broker.publish(topic, Ping(4)), heard, 4)
        await _stored(topic, Ping(4))
        async with asyncio.timeout(_RECOVERY):
            again = []
            while (n := await consumed.get()) != 4:
                again.append(n)
        # At least once: an event whose ack NATS had not stored yet when it was killed
        # comes again; nothing else does.
        assert set(again) <= {1, 2}, again

    stored = await asyncio.to_thread(_events, server, topic)
    # Nothing lost, nothing added: not the publish refused during the outage, nor any
    # broker message to the topic of the same name.
    assert [(e["sequence"], e["payload"]) for e in stored] == [
        (1, {"n": 1}),
        (2, {"n": 2}),
        (3, {"n": 4}),
    ]
    assert [e["id"] for e in stored[:2]] == [e.id for e in before]
    status, answer = await asyncio.to_thread(
        _gateway, server, "/events/store/read", {"topic": topic}, token
    )
    assert status == 200, answer
    assert await asyncio.to_thread(_works, server, ("store", "read", "during")) == "outage\n"


# --------------------------------------------------------------------------- etcd


def test_an_etcd_outage(server: MicroServerProcess, etcd: Etcd) -> None:
    ok(server.micro("store", "write", "kept", "across the outage"))
    server.start_service(HELLOWORLD, name="helloworld")
    assert "helloworld" in ok(server.micro("services")).split()
    token = _token(server)
    # Called once through each door before: the proxy and the gateway know its nodes.
    assert "Hello E" in ok(server.micro("call", "helloworld", "Helloworld.Call", '{"name":"E"}'))
    assert _gateway(server, "/helloworld/call", {"name": "GW"}, token) == (
        200,
        {"msg": "Hello GW"},
    )
    where = f"Registry etcd at {etcd.url} unreachable"

    with etcd.down():
        line = _unavailable(server, "services")
        assert line.startswith(where), line
        line = failed(server.micro("call", "nosuch", "Nosuch.Call", "{}"), 127)
        assert line.startswith(where), line
        status, answer = _gateway(server, "/nosuch/call", {}, token)
        assert status == 503, answer
        assert str(answer["detail"]).startswith(where.lower()), answer
        # What needs no registry still works: a service already known (its cached
        # routes), the store, config, events.
        out = ok(server.micro("call", "helloworld", "Helloworld.Call", '{"name":"E"}'))
        assert "Hello E" in out
        assert _gateway(server, "/helloworld/call", {"name": "GW"}, token) == (
            200,
            {"msg": "Hello GW"},
        )
        assert ok(server.micro("store", "read", "kept")) == "across the outage\n"
        ok(server.micro("config", "set", "during", "1"))
        ok(server.micro("events", "publish", "etcd-down", '{"n":1}'))

    # The service registers again by itself (every MICRO_REGISTER_INTERVAL).
    _until(server, ("services",), lambda r: "helloworld" in r.stdout.split())
    out = ok(server.micro("call", "helloworld", "Helloworld.Call", '{"name":"back"}'))
    assert "Hello back" in out
    line = failed(server.micro("call", "nosuch", "Nosuch.Call", "{}"), 4)
    assert line == 'Service "nosuch" not found'
    assert ok(server.micro("store", "read", "kept")) == "across the outage\n"
    assert ok(server.micro("config", "get", "during")) == "1\n"


async def test_calls_to_known_services_outlive_a_long_etcd_outage(
    platform: MicroServerProcess, etcd: Etcd
) -> None:
    """Callers that looked a service up keep calling it through an etcd outage of
    :data:`_OUTAGE` seconds, far longer than a stale route waits to be read again: stale
    routes beat none while the registry is away. Both routers: this process's own (calls
    straight to the node) and the server's (calls through the proxy)."""
    platform.start_service(HELLOWORLD, name="helloworld")
    direct = micro.client.new_client()
    proxied = micro.client.new_client(via_proxy=True)
    try:
        for client in (direct, proxied):
            answer = await client.call("helloworld", "Helloworld.Call", {"name": "before"})
            assert answer == {"msg": "Hello before"}
        await asyncio.to_thread(etcd.stop)
        try:
            for n in range(int(_OUTAGE / 0.5)):
                for client in (direct, proxied):
                    answer = await client.call("helloworld", "Helloworld.Call", {"name": str(n)})
                    assert answer == {"msg": f"Hello {n}"}
                await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(etcd.start)
    finally:
        await direct.close()
        await proxied.close()


async def test_a_registry_watch_outlives_etcd_losing_its_data() -> None:
    """etcd back with an older history (its data lost, or restored from a backup): a
    watch resumed from the revision it had reached would see nothing until etcd caught
    up, and never the loss of the keys that went; it reads the range again instead."""
    with running(Etcd.create()) as etcd:
        registry = EtcdRegistry(etcd.url, prefix="lost", connect_timeout=1)
        try:
            async with registry.watch() as watcher:
                names = [f"s{n}" for n in range(10)]
                for name in names:
                    await registry.register(_service(name), ttl=30)
                async with asyncio.timeout(10):
                    seen = [
                        (r.action, r.service.name) for r in [await watcher.next() for _ in names]
                    ]
                assert seen == [("create", name) for name in names]
                await asyncio.to_thread(etcd.stop)
                shutil.rmtree(etcd.data_dir)
                await asyncio.to_thread(etcd.start)
                await registry.register(_service("after"), ttl=30)
                async with asyncio.timeout(_RECOVERY):
                    results = []
                    while ("create", "after") not in results:
                        result = await watcher.next()
                        results.append((result.action, result.service.name))
            assert sorted(results) == sorted([("create", "after")] + [("delete", n) for n in names])
            assert [s.name for s in await registry.list_services()] == ["after"]
        finally:
            await registry.close()


def _service(name: str) -> Service:
    return Service(name=name, version="1", nodes=[Node(id="n1", address="127.0.0.1:1")])
