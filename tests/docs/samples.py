"""The code samples of the documentation, as the sample test runs them.

A page's fenced blocks run in order, in one folder of their own and one namespace of
the session's test server (its admin logged in, as a reader who followed the page):

* ``python`` blocks run as scripts; one that ends in ``service.run()`` is started as a
  service instead, and the page goes on once it has registered (it is stopped at the
  page's end), so later blocks can call it;
* ``python title="handler.py"`` (any file name) writes that file for later blocks;
* ``console`` blocks run each ``$ command`` line in bash, which must exit 0
  (``cd`` changes the folder the next lines run in).

Anything else (``sh``, ``text``, ``ini``, ``toml``) is shown, not run: commands that need a
machine of their own (an install from PyPI, systemd, several hosts) use ``sh``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DOCS", "Block", "blocks", "pages"]

DOCS = Path(__file__).resolve().parents[2] / "docs"
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'title="([^"]+)"')
RUN = ("python", "console")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block of a page."""

    lang: str
    code: str
    title: str | None
    line: int

    @property
    def runs(self) -> bool:
        return self.lang in RUN


def pages() -> list[Path]:
    """Every page with a block that runs."""
    return sorted(p for p in DOCS.rglob("*.md") if any(b.runs for b in blocks(p)))


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, in order."""
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        info = match.group(1).strip()
        lang = info.split()[0] if info else ""
        title = _TITLE.search(info)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(lang, match.group(2), title.group(1) if title else None, line))
    return found
