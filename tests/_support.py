"""Helpers shared by the tests (import from tests._support)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELLOWORLD = ROOT / "examples" / "helloworld" / "main.py"


def free_port() -> int:
    """A port that was free a moment ago (for tests that must restart on the same port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- backends

POSTGRES_HOST = "127.0.0.1:5432"
POSTGRES_DATABASE = "test"
POSTGRES_USERS = ("postgres", "root")
REDIS_URL = "redis://127.0.0.1:6379/0"

# Each backend is looked for once per test run: its URL, or why it is missing.
_found: dict[str, str] = {}
_missing: dict[str, str] = {}


def backend_missing(reason: str) -> NoReturn:
    """Skip the test because its backend is not there, or fail it where every backend
    is required (``MICRO_REQUIRE_BACKENDS=1``, as in CI)."""
    if os.environ.get("MICRO_REQUIRE_BACKENDS") == "1":
        pytest.fail(f"{reason} (MICRO_REQUIRE_BACKENDS=1)", pytrace=False)
    pytest.skip(reason)


async def require_postgres() -> str:
    """The URL of the test PostgreSQL (database ``test`` on loopback, trust auth, user
    ``postgres`` or else ``root``), or skip/fail the test with the reason."""
    if "postgres" not in _found and "postgres" not in _missing:
        try:
            import asyncpg
        except ImportError:
            _missing["postgres"] = "PostgreSQL: asyncpg is not installed (the 'postgres' extra)"
        else:
            reasons = []
            for user in POSTGRES_USERS:
                url = f"postgresql://{user}@{POSTGRES_HOST}/{POSTGRES_DATABASE}"
                try:
                    conn = await asyncpg.connect(url, timeout=5)
                except Exception as exc:  # whatever stops a connection is the reason to show
                    reasons.append(f"as {user}: {type(exc).__name__}: {exc}")
                    continue
                await conn.close()
                _found["postgres"] = url
                break
            else:
                _missing["postgres"] = (
                    f"PostgreSQL not reachable at {POSTGRES_HOST}: {'; '.join(reasons)}"
                )
    if "postgres" in _missing:
        backend_missing(_missing["postgres"])
    return _found["postgres"]


async def require_redis() -> str:
    """The URL of the test Redis (loopback, port 6379), or skip/fail with the reason."""
    if "redis" not in _found and "redis" not in _missing:
        try:
            import redis.asyncio
        except ImportError:
            _missing["redis"] = "Redis: redis is not installed (the 'redis' extra)"
        else:
            client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
            try:
                await client.ping()
            except Exception as exc:  # whatever stops a connection is the reason to show
                _missing["redis"] = (
                    f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}: {exc}"
                )
            else:
                _found["redis"] = REDIS_URL
            finally:
                await client.aclose()
    if "redis" in _missing:
        backend_missing(_missing["redis"])
    return _found["redis"]


NATS_URL = "nats://127.0.0.1:4222"


async def require_nats() -> str:
    """The URL of the test NATS with JetStream (loopback, port 4222), or skip/fail with
    the reason."""
    if "nats" not in _found and "nats" not in _missing:
        try:
            import nats
        except ImportError:
            _missing["nats"] = "NATS: nats-py is not installed (the 'nats' extra)"
        else:

            async def quiet(exc: Exception) -> None:
                pass

            try:
                client = await nats.connect(
                    NATS_URL,
                    connect_timeout=5,
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    error_cb=quiet,
                )
            except Exception as exc:  # whatever stops a connection is the reason to show
                _missing["nats"] = f"NATS not reachable at {NATS_URL}: {type(exc).__name__}: {exc}"
            else:
                try:
                    await client.jetstream().account_info()
                except Exception as exc:
                    _missing["nats"] = (
                        f"NATS at {NATS_URL} has no JetStream: {type(exc).__name__}: {exc}"
                    )
                else:
                    _found["nats"] = NATS_URL
                finally:
                    await client.close()
    if "nats" in _missing:
        backend_missing(_missing["nats"])
    return _found["nats"]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a CLI command that must succeed quietly on stderr."""
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def failed(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line a failing command printed on stderr."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --------------------------------------------------------------------------- files and git


def write(path: Path, text: str = "") -> Path:
    """Write ``text`` to ``path``, making its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` as a throwaway committer; its stdout, stripped."""
    result = subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


# --------------------------------------------------------------------------- HTTP


def http(
    method: str,
    url: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library: (status, headers lower-cased, body)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()
