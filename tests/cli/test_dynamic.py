"""``micro <service> <command> --flags``: services as commands (reference §3.4), end to end.

Read-only tests share one real server running helloworld and ``flags``, a service written
here whose ``Flags.Echo`` answers its request as decoded, so each flag type can be seen
arriving; tests that change accounts or namespaces get a server of their own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests._support import HELLOWORLD, failed, ok

from micro.cli.dynamic import command_of, split
from micro.testing import MicroServerProcess, start_server

FLAGS_SERVICE = """
from typing import Annotated, Any

import msgspec

import micro


class Options(msgspec.Struct, frozen=True):
    domain: str = ""
    max_count: int = 0


class EchoRequest(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(description="Who is asking")] = ""
    verbose: bool = False
    count: int = 0
    ratio: float = 0.0
    tags: list[str] = []
    nums: list[int] = []
    options: Options = Options()
    labels: dict[str, str] = {}


class Flags:
    async def echo(self, req: EchoRequest) -> EchoRequest:
        return req

    async def bag(self, req: dict[str, Any]) -> dict[str, Any]:
        return req

    async def counts(self, req: dict[str, int]) -> dict[str, int]:
        return req


class Other:
    async def ping(self, req: EchoRequest) -> EchoRequest:
        return req


service = micro.Service("flags")
service.handle(Flags())
service.handle(Other())
service.run()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicroServerProcess]:
    """One server for the read-only tests, with helloworld and flags registered."""
    folder = tmp_path_factory.mktemp("dynamic")
    main = folder / "flags.py"
    main.write_text(FLAGS_SERVICE)
    started = start_server(folder / "micro-home")
    try:
        started.start_service(HELLOWORLD, name="helloworld")
        started.start_service(main, name="flags")
        yield started
    finally:
        started.stop()


def echo(server: MicroServerProcess, *flags: str) -> dict[str, object]:
    answer: dict[str, object] = json.loads(ok(server.micro("flags", "echo", *flags)))
    return answer


# -- calls ----------------------------------------------------------------------------------


def test_call_prints_like_micro_call(server: MicroServerProcess) -> None:
    out = ok(server.micro("helloworld", "call", "--name=John"))
    assert out == '{\n\t"msg": "Hello John"\n}\n'
    assert ok(server.micro("helloworld", "call", "--name", "John")) == out
    assert out == ok(server.micro("call", "helloworld", "Helloworld.Call", '{"name":"John"}'))


@pytest.mark.parametrize("command", ["call", "Call", "CALL"])
def test_command_case_does_not_matter(server: MicroServerProcess, command: str) -> None:
    assert json.loads(ok(server.micro("helloworld", command, "--name=Jo"))) == {"msg": "Hello Jo"}


def test_server_stream_prints_each_message(server: MicroServerProcess) -> None:
    out = ok(server.micro("helloworld", "stream", "--count=3"))
    assert out == "".join(f'{{\n\t"count": {i}\n}}\n' for i in range(3))


@pytest.mark.parametrize("command", ["ping-pong", "pingPong", "ping_pong"])
def test_bidi_stream_reads_stdin_lines(server: MicroServerProcess, command: str) -> None:
    pings = '{"stroke": 1}\n\n{"stroke": 2}\n'
    out = ok(server.micro("helloworld", command, input=pings))
    assert out == "".join(f'{{\n\t"stroke": {i}\n}}\n' for i in (1, 2))


def test_bidi_stream_with_flags_sends_one_message(server: MicroServerProcess) -> None:
    out = ok(server.micro("helloworld", "ping-pong", "--stroke=7", input=""))
    assert out == '{\n\t"stroke": 7\n}\n'


def test_handler_and_method(server: MicroServerProcess) -> None:
    """Three words: ``<service> <handler> <method>`` for a handler not named after the
    service (``Other.Ping`` of flags)."""
    assert json.loads(ok(server.micro("flags", "other", "ping", "--count=2")))["count"] == 2
    assert json.loads(ok(server.micro("flags", "flags", "echo", "--count=3")))["count"] == 3


def test_core_service(server: MicroServerProcess) -> None:
    listed = json.loads(ok(server.micro("registry", "list-services")))
    assert {"helloworld", "flags", "registry"} <= {s["name"] for s in listed["services"]}
    found = json.loads(ok(server.micro("registry", "getService", "--service=helloworld")))
    assert [s["name"] for s in found["services"]] == ["helloworld"]
    nested = ok(server.micro("registry", "registry", "get-service", "--service", "flags"))
    assert json.loads(nested)["services"][0]["name"] == "flags"


# -- flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "field", "expected"),
    [
        (["--verbose"], "verbose", True),
        (["--verbose=false"], "verbose", False),
        (["--verbose", "true", "--count=1"], "verbose", True),
        (["--verbose", "--count=1"], "verbose", True),
        (["--count=0x1f"], "count", 31),
        (["--count", "-5"], "count", -5),
        (["--count=010"], "count", 10),
        (["--ratio=2.5"], "ratio", 2.5),
        (["--ratio", "3"], "ratio", 3.0),
        (["--name", "two words"], "name", "two words"),
        (["--tags", "a", "--tags", "b"], "tags", ["a", "b"]),
        (["--tags=a,b", "--tags=c"], "tags", ["a", "b", "c"]),
        (["--tags="], "tags", []),
        (["--nums=1,0x2", "--nums", "3"], "nums", [1, 2, 3]),
        (["--nums=[4, 5]"], "nums", [4, 5]),
        (["--options.domain=x"], "options", {"domain": "x", "max_count": 0}),
        (
            ["--options-domain=x", "--options-max-count=7"],
            "options",
            {"domain": "x", "max_count": 7},
        ),
        (["--options_max_count", "8"], "options", {"domain": "", "max_count": 8}),
        (
            ["--options", '{"domain": "j", "max_count": 2}'],
            "options",
            {"domain": "j", "max_count": 2},
        ),
        (
            ['--options={"domain": "j"}', "--options.max_count=3"],
            "options",
            {"domain": "j", "max_count": 3},
        ),
        (["--labels", '{"a": "b", "c": "d"}'], "labels", {"a": "b", "c": "d"}),
    ],
)
def test_flag_types(
    server: MicroServerProcess, flags: list[str], field: str, expected: object
) -> None:
    assert echo(server, *flags)[field] == expected


def test_a_mapping_request_takes_any_flag(server: MicroServerProcess) -> None:
    """A handler taking a dict gets every flag as a key: typed by the dict's values,
    else JSON when it is, else the words."""
    bag = ok(server.micro("flags", "bag", "--a=1", "--b", "two words", "--c", '{"d": [1]}'))
    assert json.loads(bag) == {"a": 1, "b": "two words", "c": {"d": [1]}}
    assert json.loads(ok(server.micro("flags", "counts", "--a=0x10", "--b-c", "2"))) == {
        "a": 16,
        "b-c": 2,
    }
    line = failed(server.micro("flags", "counts", "--a=x"), 1)
    assert line == "Invalid value 'x' for flag --a: expected an integer"
    assert "\t--<key> int64  a key of the request" in ok(server.micro("flags", "counts", "-h"))


def test_no_flags_sends_an_empty_request(server: MicroServerProcess) -> None:
    assert echo(server) == {
        "name": "",
        "verbose": False,
        "count": 0,
        "ratio": 0.0,
        "tags": [],
        "nums": [],
        "options": {"domain": "", "max_count": 0},
        "labels": {},
    }


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--nope=1"], "Unknown flag: nope"),
        (["--count=abc"], "Invalid value 'abc' for flag --count: expected an integer"),
        (["--count=1.5"], "Invalid value '1.5' for flag --count: expected an integer"),
        (["--nums=1,x"], "Invalid value 'x' for flag --nums: expected an integer"),
        (["--ratio=fast"], "Invalid value 'fast' for flag --ratio: expected a number"),
        (
            ["--verbose=maybe"],
            "Invalid value 'maybe' for flag --verbose: expected a boolean (true or false)",
        ),
        (["--labels=a=b"], "Invalid value 'a=b' for flag --labels: expected a JSON object"),
        (["--count"], "Flag --count needs a value (int64)"),
        (["--=x"], "Invalid flag: --=x. Expected format: --foo=bar"),
    ],
)
def test_bad_flags(server: MicroServerProcess, flags: list[str], message: str) -> None:
    assert failed(server.micro("flags", "echo", *flags), 1) == message


def test_unknown_flag(server: MicroServerProcess) -> None:
    assert failed(server.micro("helloworld", "call", "--nope"), 1) == "Unknown flag: nope"


# -- help -------------------------------------------------------------------------------------

SERVICE_HELP = (
    "NAME:\n\tmicro helloworld\n\n"
    "VERSION:\n\tlatest\n\n"
    "USAGE:\n\tmicro helloworld [command]\n\n"
    "COMMANDS:\n\tcall\n\tping-pong\n\tstream\n"
)


@pytest.mark.parametrize(
    "args", [(), ("--help",), ("-h",), ("--name=x",)], ids=["bare", "help", "h", "flags"]
)
def test_service_help(server: MicroServerProcess, args: tuple[str, ...]) -> None:
    """A service alone renders its help, flags or not (v3.19)."""
    assert ok(server.micro("helloworld", *args)) == SERVICE_HELP


def test_service_help_with_handlers(server: MicroServerProcess) -> None:
    out = ok(server.micro("flags"))
    assert out.endswith("COMMANDS:\n\tbag\n\tcounts\n\techo\n\tother ping\n")


def test_command_help(server: MicroServerProcess) -> None:
    out = ok(server.micro("helloworld", "call", "--help"))
    assert out == (
        "NAME:\n\tmicro helloworld call\n\n"
        "USAGE:\n\tmicro helloworld call [flags]\n\n"
        "FLAGS:\n\t--name string\n"
    )


def test_command_help_lists_leaf_fields_with_types(server: MicroServerProcess) -> None:
    lines = ok(server.micro("flags", "echo", "--help")).splitlines()
    flags = lines[lines.index("FLAGS:") + 1 :]
    assert [line.split()[:2] for line in flags] == [
        ["--name", "string"],
        ["--verbose", "bool"],
        ["--count", "int64"],
        ["--ratio", "float64"],
        ["--tags", "[]string"],
        ["--nums", "[]int64"],
        ["--options_domain", "string"],
        ["--options_max_count", "int64"],
        ["--labels", "map[string]string"],
    ]
    assert flags[0].endswith("  Who is asking")


# -- errors -----------------------------------------------------------------------------------


def test_incorrect_number_of_arguments(server: MicroServerProcess) -> None:
    result = server.micro("helloworld", "a", "b", "c")
    assert failed(result, 1) == "Incorrect number of arguments"


def test_unknown_endpoint(server: MicroServerProcess) -> None:
    result = server.micro("helloworld", "nope", "--name=x")
    assert failed(result, 5) == "Endpoint Helloworld.Nope not found for service helloworld"
    result = server.micro("helloworld", "ping-ping", "--help")
    assert failed(result, 5) == "Endpoint Helloworld.PingPing not found for service helloworld"


def test_unknown_command_and_no_service(server: MicroServerProcess) -> None:
    result = server.micro("nosuch", "call", "--x=1")
    assert failed(result, 1) == "Unrecognized micro command: nosuch. Please refer to 'micro --help'"


def test_server_not_reachable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(MICRO_HOME=str(tmp_path), MICRO_PROXY=f"127.0.0.1:{port}")
    result = subprocess.run(
        [sys.executable, "-m", "micro", "helloworld", "call", "--name=x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert failed(result, 4) == f"Failed to connect to micro server at 127.0.0.1:{port}"


def test_a_plugin_wins_over_a_service(server: MicroServerProcess, tmp_path: Path) -> None:
    plugin = tmp_path / "micro-helloworld"
    plugin.write_text('#!/bin/sh\necho "plugin $*"\n')
    plugin.chmod(0o755)
    env = server.env(PATH=f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert ok(server.micro("helloworld", "call", "--name=x", env=env)) == "plugin call --name=x\n"


# -- namespaces -------------------------------------------------------------------------------


def test_services_of_another_namespace_are_not_commands(micro_server: MicroServerProcess) -> None:
    """A service registered in ``foo`` is no command in ``micro``; in ``foo`` it is. And
    ``micro``'s helloworld, found there as a fallback, is not reachable from ``foo``."""
    micro_server.start_service(HELLOWORLD, name="helloworld")
    in_foo = micro_server.env(MICRO_NAMESPACE="foo", MICRO_SERVICE_NAME="secret")
    micro_server.start_service(HELLOWORLD, name="secret", env=in_foo)

    result = micro_server.micro("secret", "helloworld", "call", "--name=x")
    assert failed(result, 1) == "Unrecognized micro command: secret. Please refer to 'micro --help'"
    out = ok(micro_server.micro("-n", "foo", "secret", "helloworld", "call", "--name=x"))
    assert json.loads(out) == {"msg": "Hello x"}

    result = micro_server.micro("-n", "foo", "helloworld", "call", "--name=x")
    assert failed(result, 4) == 'Service "helloworld" not found'
    listed = json.loads(ok(micro_server.micro("-n", "foo", "registry", "list-services")))
    assert [s["name"] for s in listed["services"]] == ["secret"]


# -- parsing, offline -------------------------------------------------------------------------


def never(name: str) -> bool:
    return False


def only_verbose(name: str) -> bool:
    return name == "verbose"


@pytest.mark.parametrize(
    ("args", "is_bool", "positionals", "flags"),
    [
        (["call", "--name=x"], never, ["call"], [("name", "x")]),
        (["call", "--name", "x"], never, ["call"], [("name", "x")]),
        (["--name", "x", "call"], never, ["call"], [("name", "x")]),
        (["call", "--a=b=c"], never, ["call"], [("a", "b=c")]),
        (["call", "--verbose", "more"], never, ["call"], [("verbose", "more")]),
        (["call", "--verbose", "more"], only_verbose, ["call", "more"], [("verbose", None)]),
        (["call", "--verbose", "false"], only_verbose, ["call"], [("verbose", "false")]),
        (["call", "--verbose", "--n", "-1"], never, ["call"], [("verbose", None), ("n", "-1")]),
        (["call", "--", "--not-a-flag"], never, ["call", "--not-a-flag"], []),
        (["call", "-h"], never, ["call"], [("h", None)]),
    ],
)
def test_split(
    args: list[str],
    is_bool: Callable[[str], bool],
    positionals: list[str],
    flags: list[tuple[str, str | None]],
) -> None:
    assert split(args, is_bool) == (positionals, flags)


@pytest.mark.parametrize(
    ("endpoint", "command"),
    [
        ("Helloworld.Call", "call"),
        ("Helloworld.PingPong", "ping-pong"),
        ("Foo.Bar", "foo bar"),
        ("FooBar.GetHTTPStatus", "foo-bar get-http-status"),
    ],
)
def test_command_names(endpoint: str, command: str) -> None:
    assert command_of("helloworld", endpoint) == command
