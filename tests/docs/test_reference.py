"""The generated reference names every setting the code reads, each with what it means."""

from __future__ import annotations

import re
import sys

from tests._support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import docs_hooks


def test_every_micro_variable_in_src_is_in_the_settings_table() -> None:
    read = {
        var
        for path in (ROOT / "src" / "micro").rglob("*.py")
        for var in re.findall(r'"(MICRO_[A-Z0-9_]+)"', path.read_text())
    }
    rows = {var: meaning for var, _, _, meaning in docs_hooks.rows()}
    assert read <= set(rows), f"missing from the settings reference: {sorted(read - set(rows))}"
    assert [var for var, meaning in rows.items() if not meaning.strip()] == []


def test_the_table_gives_flags_and_defaults() -> None:
    table = docs_hooks.table()
    assert (
        "| `MICRO_PROXY_ADDRESS` | `--proxy_address` | `127.0.0.1:8081` | Where the proxy" in table
    )
    assert "| `MICRO_HOME` |  | `~/.micro` |" in table
