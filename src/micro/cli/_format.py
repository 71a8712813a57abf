"""Tables for the CLI's output."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["table"]


def table(rows: Sequence[Sequence[str]], gap: int = 2) -> list[str]:
    """Rows as left-aligned columns (a tabwriter with space padding)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "".join(
            cell.ljust(widths[i] + gap) if i < len(row) - 1 else cell for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
