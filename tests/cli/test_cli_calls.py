"""The CLI against a real ``micro server`` and real helloworld processes, end to end."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests._support import failed, ok

from micro.testing import MicroServerProcess

HELLOWORLD = Path(__file__).resolve().parents[2] / "examples" / "helloworld" / "main.py"
SLOW = Path(__file__).resolve().parent / "slow_service.py"


@pytest.fixture
def hello(micro_server: MicroServerProcess) -> MicroServerProcess:
    """A server with one helloworld instance registered."""
    micro_server.start_service(HELLOWORLD, name="helloworld")
    return micro_server


# -- the registry -------------------------------------------------------------------------


def test_services_lists_registry_and_helloworld(hello: MicroServerProcess) -> None:
    names = ok(hello.micro("services")).splitlines()
    assert "registry" in names
    assert "helloworld" in names
    assert names == sorted(set(names))


def test_services_does_not_import_heavy_modules(hello: MicroServerProcess) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "micro", "services"],
        env=hello.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] == "rich"}
    assert "micro.server.app" not in imported


def test_get_service_shows_nodes_and_endpoints(hello: MicroServerProcess) -> None:
    out = ok(hello.micro("get", "service", "helloworld"))
    lines = out.splitlines()
    assert lines[:4] == ["service  helloworld", "", "version latest", ""]
    assert re.match(r"ID\s+Address\s+Metadata$", lines[4])
    assert re.match(r"helloworld-\S+\s+127\.0\.0\.1:\d+\s+\S*protocol=micro", lines[5])
    assert (
        "Endpoint: Helloworld.Call\nRequest: {\n\tname string\n}\nResponse: {\n\tmsg string\n}"
        in out
    )
    assert "Endpoint: Helloworld.PingPong\nMetadata: stream=true,stream_type=bidi\n" in out
    assert "Endpoint: Helloworld.Stream\n" in out


def test_get_service_json(hello: MicroServerProcess) -> None:
    found = json.loads(ok(hello.micro("get", "service", "helloworld", "--output", "json")))
    assert [svc["name"] for svc in found] == ["helloworld"]
    names = {ep["name"] for ep in found[0]["endpoints"]}
    assert {"Helloworld.Call", "Helloworld.Stream", "Helloworld.PingPong"} <= names


def test_get_unknown_service(micro_server: MicroServerProcess) -> None:
    result = micro_server.micro("get", "service", "nosuch")
    assert failed(result, 4) == 'Service "nosuch" not found'


# -- call ---------------------------------------------------------------------------------


def test_call_prints_tab_indented_json(hello: MicroServerProcess) -> None:
    out = ok(hello.micro("call", "helloworld", "Helloworld.Call", '{"name":"John"}'))
    assert out == '{\n\t"msg": "Hello John"\n}\n'


def test_call_reads_stdin_and_prints_raw(hello: MicroServerProcess) -> None:
    out = ok(
        hello.micro(
            "call", "helloworld", "Helloworld.Call", "-", "--output", "raw", input='{"name": "Jo"}'
        )
    )
    assert json.loads(out) == {"msg": "Hello Jo"}
    assert "\t" not in out


def test_call_with_metadata_and_timeout(hello: MicroServerProcess) -> None:
    out = ok(
        hello.micro(
            "call",
            "helloworld",
            "Helloworld.Call",
            '{"name":"Md"}',
            "--metadata",
            "x-trace=1",
            "-m",
            "x-other=a=b",
            "--request_timeout",
            "2s",
        )
    )
    assert json.loads(out) == {"msg": "Hello Md"}


def test_call_unknown_service(micro_server: MicroServerProcess) -> None:
    result = micro_server.micro("call", "nosuch", "Foo.Bar", "{}")
    assert failed(result, 4) == 'Service "nosuch" not found'


def test_call_unknown_endpoint(hello: MicroServerProcess) -> None:
    result = hello.micro("call", "helloworld", "Helloworld.Nope", "{}")
    assert "Helloworld.Nope" in failed(result, 5)


def test_call_wrong_field_type(hello: MicroServerProcess) -> None:
    result = hello.micro("call", "helloworld", "Helloworld.Call", '{"name": 42}')
    line = failed(result, 127)
    assert "name" in line
    assert "str" in line


def test_call_timeout(micro_server: MicroServerProcess) -> None:
    micro_server.start_service(SLOW, name="slow")
    args = ("call", "slow", "Slow.Sleep", '{"seconds": 5}', "--request_timeout", "300ms")
    started = time.monotonic()
    result = micro_server.micro(*args)
    assert failed(result, 1) == "Request timed out"
    assert time.monotonic() - started < 4
    out = ok(micro_server.micro("call", "slow", "Slow.Sleep", '{"seconds": 0.01}'))
    assert out == '{\n\t"slept": 0.01\n}\n'


# -- stream -------------------------------------------------------------------------------


def test_stream_prints_each_message(hello: MicroServerProcess) -> None:
    out = ok(hello.micro("stream", "helloworld", "Helloworld.Stream", '{"count":3}'))
    assert out == "".join(f'{{\n\t"count": {i}\n}}\n' for i in range(3))


def test_bidi_stream_reads_stdin_lines(hello: MicroServerProcess) -> None:
    pings = '{"stroke": 1}\n\n{"stroke": 2}\n{"stroke": 3}'  # blank line skipped, no final newline
    out = ok(hello.micro("stream", "helloworld", "Helloworld.PingPong", input=pings))
    assert out == "".join(f'{{\n\t"stroke": {i}\n}}\n' for i in (1, 2, 3))


def test_bidi_stream_bad_line(hello: MicroServerProcess) -> None:
    result = hello.micro(
        "stream", "helloworld", "Helloworld.PingPong", input='{"stroke": 1}\nnot json\n'
    )
    assert failed(result, 1).startswith("Invalid request: ")


def test_ctrl_c_ends_a_stream_quietly(hello: MicroServerProcess) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "micro", "stream", "helloworld", "Helloworld.PingPong"],
        env=hello.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write('{"stroke": 9}\n')
        proc.stdin.flush()
        assert [proc.stdout.readline() for _ in range(3)] == ["{\n", '\t"stroke": 9\n', "}\n"]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err == ""


def test_stream_unary_endpoint_is_an_error(hello: MicroServerProcess) -> None:
    result = hello.micro("stream", "helloworld", "Helloworld.Call", '{"name": "x"}')
    assert "Helloworld.Call" in failed(result, 127)


# -- debug health and several instances ---------------------------------------------------


def test_debug_health(hello: MicroServerProcess) -> None:
    lines = ok(hello.micro("debug", "health", "helloworld")).splitlines()
    assert lines[:5] == [
        "service  helloworld",
        "",
        "version latest",
        "",
        "node\t\taddress:port\t\tstatus",
    ]
    assert re.fullmatch(r"helloworld-\S+\t\t127\.0\.0\.1:\d+\t\tok", lines[5])
    assert len(lines) == 6


def test_debug_health_reports_a_dead_node(hello: MicroServerProcess) -> None:
    doomed = hello.start_service(HELLOWORLD, name="helloworld")
    doomed.kill()  # no chance to deregister: the registry keeps it until its TTL
    doomed.wait()
    result = hello.micro("debug", "health", "helloworld")
    assert result.returncode == 1, result.stderr
    rows = result.stdout.splitlines()[5:]
    assert len(rows) == 2
    assert sorted(row.rsplit("\t\t", 1)[1] == "ok" for row in rows) == [False, True]


def test_debug_health_unknown_service(micro_server: MicroServerProcess) -> None:
    result = micro_server.micro("debug", "health", "nosuch")
    assert failed(result, 4) == 'Service "nosuch" not found'


def test_two_instances_share_the_calls(hello: MicroServerProcess) -> None:
    hello.start_service(HELLOWORLD, name="helloworld")
    rows = ok(hello.micro("debug", "health", "helloworld")).splitlines()[5:]
    assert len(rows) == 2
    assert all(row.endswith("\t\tok") for row in rows)
    addresses = [row.split("\t\t")[1] for row in rows]
    assert len(set(addresses)) == 2

    for i in range(4):  # the proxy picks nodes round robin
        ok(hello.micro("call", "helloworld", "Helloworld.Call", f'{{"name": "n{i}"}}'))
    for address in addresses:
        stats = json.loads(
            ok(hello.micro("call", "helloworld", "Debug.Stats", "--address", address))
        )
        # Debug.Health and Debug.Stats counted once each: at least one call came here.
        assert stats["requests"] >= 3, (address, stats)
