"""``micro config get|set|del`` end to end: the real ``micro`` command against a real
``micro server`` hosting the config service (reference §3.2)."""

from __future__ import annotations

import stat

from tests._support import failed, ok

from micro.config.secrets import KEY_FILE
from micro.testing import MicroServerProcess


def test_set_get_del(micro_server: MicroServerProcess) -> None:
    m = micro_server.micro
    assert ok(m("config", "set", "greeting", "hello world")) == ""
    assert ok(m("config", "get", "greeting")) == "hello world\n"
    ok(m("config", "set", "quoted", '"json string"'))
    assert ok(m("config", "get", "quoted")) == "json string\n"
    ok(m("config", "set", "db.port", "5432"))
    ok(m("config", "set", "db.tags", '["a", "b"]'))
    ok(m("config", "set", "db.on", "true"))
    assert ok(m("config", "get", "db.port")) == "5432\n"
    assert ok(m("config", "get", "db")) == '{"port":5432,"tags":["a","b"],"on":true}\n'
    assert ok(m("config", "del", "db.port")) == ""
    assert failed(m("config", "get", "db.port"), 1) == "Not found"
    ok(m("config", "del", "db"))
    assert failed(m("config", "get", "db"), 1) == "Not found"
    assert failed(m("config", "get", "never.set"), 1) == "Not found"
    ok(m("config", "del", "never.set"))


def test_objects_merge_as_in_micro(micro_server: MicroServerProcess) -> None:
    m = micro_server.micro
    ok(m("config", "set", "x", '{"a":1,"b":{"b1":2},"c":3}'))
    ok(m("config", "set", "x", '{"d":4,"b":{"b2":2.2}}'))
    assert ok(m("config", "get", "x")) == '{"a":1,"b":{"b1":2,"b2":2.2},"c":3,"d":4}\n'
    ok(m("config", "set", "x.b", "flat"))
    assert ok(m("config", "get", "x.b")) == "flat\n"


def test_output_keeps_html_characters(micro_server: MicroServerProcess) -> None:
    m = micro_server.micro
    ok(m("config", "set", "html", '{"tag":"<b>&</b>"}'))
    assert ok(m("config", "get", "html")) == '{"tag":"<b>&</b>"}\n'
    assert ok(m("config", "get", "html.tag")) == "<b>&</b>\n"


def test_secrets_are_masked_unless_asked_for(micro_server: MicroServerProcess) -> None:
    m = micro_server.micro
    ok(m("config", "set", "db.user", "app"))
    ok(m("config", "set", "db.password", "hunter2", "--secret"))
    ok(m("config", "set", "db.pin", "1234", "-s"))
    assert ok(m("config", "get", "db.password")) == "[secret]\n"
    assert ok(m("config", "get", "db.pin")) == "[secret]\n"
    assert ok(m("config", "get", "db.password", "--secret")) == "hunter2\n"
    assert ok(m("config", "get", "db.pin", "-s")) == "1234\n"
    assert ok(m("config", "get", "db")) == '{"user":"app","password":"[secret]","pin":"[secret]"}\n'
    assert (
        ok(m("config", "get", "db", "--secret"))
        == '{"user":"app","password":"hunter2","pin":1234}\n'
    )
    key_file = micro_server.home / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_namespaces_are_isolated(micro_server: MicroServerProcess) -> None:
    m = micro_server.micro
    ok(m("config", "set", "owner", "micro"))
    assert failed(m("-n", "team", "config", "get", "owner"), 1) == "Not found"
    ok(m("-n", "team", "config", "set", "owner", "team"))
    assert ok(m("-n", "team", "config", "get", "owner")) == "team\n"
    assert ok(m("config", "get", "owner")) == "micro\n"
    ok(m("-n", "team", "config", "del", "owner"))
    assert ok(m("config", "get", "owner")) == "micro\n"


def test_bad_input_is_one_line_and_loses_nothing(micro_server: MicroServerProcess) -> None:
    m = micro_server.micro
    ok(m("config", "set", "keep", "1"))
    assert "Invalid path 'a..b'" in failed(m("config", "set", "a..b", "1"), 1)
    assert "Invalid path" in failed(m("config", "get", ".x"), 1)
    assert "Invalid path" in failed(m("config", "del", "x."), 1)
    assert "root of a config tree" in failed(m("config", "set", "", "1"), 127)
    ok(m("config", "set", "text", "{not json"))
    assert ok(m("config", "get", "text")) == "{not json\n"
    assert ok(m("config", "get", "keep")) == "1\n"
    assert "Unrecognized subcommand" in failed(m("config", "move", "a"), 1)
