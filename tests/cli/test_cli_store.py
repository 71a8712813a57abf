"""micro store end to end against a real server (SQLite store, the default profile)."""

from __future__ import annotations

import json
from pathlib import Path

from micro.testing import MicroServerProcess


def _ok(server: MicroServerProcess, *args: str) -> str:
    out = server.micro(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_write_read_list_delete(micro_server: MicroServerProcess) -> None:
    _ok(micro_server, "store", "write", "user/1", "Ann", "Lee")
    _ok(micro_server, "store", "write", "user/2", "Bo")
    _ok(micro_server, "store", "write", "order/1", "book")
    assert _ok(micro_server, "store", "read", "user/1") == "Ann Lee\n"
    assert _ok(micro_server, "store", "read", "user/", "--prefix") == "Ann Lee\nBo\n"
    assert _ok(micro_server, "store", "list") == "order/1\nuser/1\nuser/2\n"
    assert _ok(micro_server, "store", "list", "user/") == "user/1\nuser/2\n"
    assert _ok(micro_server, "store", "list", "--offset", "1") == "user/1\nuser/2\n"
    assert _ok(micro_server, "store", "list", "--limit", "1", "--order", "desc") == "user/2\n"
    _ok(micro_server, "store", "delete", "user/1")
    missing = micro_server.micro("store", "read", "user/1")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Not found"


def test_verbose_json_and_expiry(micro_server: MicroServerProcess) -> None:
    _ok(micro_server, "store", "write", "brief", "x", "--expiry", "1h")
    _ok(micro_server, "store", "write", "kept", "y")
    lines = _ok(micro_server, "store", "read", "", "--prefix", "-v").splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "EXPIRY"]
    assert lines[1].split()[:2] == ["brief", "x"]
    assert lines[1].split()[2].startswith(("59m", "1h"))
    assert lines[2].split() == ["kept", "y", "None"]
    records = json.loads(_ok(micro_server, "store", "read", "kept", "--output", "json"))
    assert records == [{"key": "kept", "value": "y", "metadata": {}, "expiry": 0, "version": 1}]


def test_write_if_version(micro_server: MicroServerProcess) -> None:
    _ok(micro_server, "store", "write", "cas", "one", "--if-version", "0")
    _ok(micro_server, "store", "write", "cas", "two", "--if-version", "1")
    stale = micro_server.micro("store", "write", "cas", "three", "--if-version", "1")
    assert stale.returncode == 127
    assert "Version conflict" in stale.stderr
    assert "expected version 1, found version 2" in stale.stderr
    assert _ok(micro_server, "store", "read", "cas") == "two\n"


def test_tables_databases_and_namespaces(micro_server: MicroServerProcess) -> None:
    _ok(micro_server, "store", "write", "k", "mine", "--table", "notes")
    _ok(micro_server, "-n", "other", "store", "write", "k", "theirs", "--table", "notes")
    assert _ok(micro_server, "store", "read", "k", "-t", "notes") == "mine\n"
    assert _ok(micro_server, "-n", "other", "store", "read", "k", "-t", "notes") == "theirs\n"
    assert micro_server.micro("-n", "third", "store", "read", "k", "-t", "notes").returncode == 1
    assert "notes" in _ok(micro_server, "store", "tables").split()
    databases = _ok(micro_server, "store", "databases").split()
    assert "micro" in databases
    assert "other" in databases


def test_snapshot_and_restore(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    for i in range(3):
        _ok(micro_server, "store", "write", f"k{i}", f"v{i}")
    _ok(micro_server, "store", "write", "n", "note", "-t", "notes")
    snap = tmp_path / "snap.jsonl"
    assert "Saved 4 records" in _ok(micro_server, "store", "snapshot", "--destination", str(snap))
    for i in range(3):
        _ok(micro_server, "store", "delete", f"k{i}")
    _ok(micro_server, "store", "delete", "n", "-t", "notes")
    assert _ok(micro_server, "store", "list") == ""
    assert "Restored 4 records" in _ok(micro_server, "store", "restore", "--source", str(snap))
    assert _ok(micro_server, "store", "list") == "k0\nk1\nk2\n"
    assert _ok(micro_server, "store", "read", "n", "-t", "notes") == "note\n"


def test_bad_input(micro_server: MicroServerProcess, tmp_path: Path) -> None:
    bad_expiry = micro_server.micro("store", "write", "k", "v", "--expiry", "soon")
    assert bad_expiry.returncode == 1
    assert "Invalid expiry" in bad_expiry.stderr
    empty = micro_server.micro("store", "write", "", "v")
    assert empty.returncode == 127
    assert "Key is empty" in empty.stderr
    bad_table = micro_server.micro("store", "write", "k", "v", "-t", "no such;table")
    assert bad_table.returncode == 127
    assert "Invalid table name" in bad_table.stderr
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"key": "x"}\n')
    restored = micro_server.micro("store", "restore", "--source", str(garbage))
    assert restored.returncode == 1
    assert "not a snapshot record" in restored.stderr
    assert "Traceback" not in empty.stderr + bad_table.stderr + restored.stderr
