"""Helpers shared by the tests (import from tests._support)."""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELLOWORLD = ROOT / "examples" / "helloworld" / "main.py"


def free_port() -> int:
    """A port that was free a moment ago (for tests that must restart on the same port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
