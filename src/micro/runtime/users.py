"""One unprivileged system user per namespace, for the processes the runtime runs.

A server run as root gives every namespace a user of its own, ``micro-<namespace>``, made
with ``useradd --system`` the first time that namespace runs something: no home, no
shell, no password, its own group and no other. Its services and their builds run as
that user (see :mod:`micro.runtime.sandbox`), so one namespace's processes can neither
read another's nor the server's.

The name is the namespace in lower case with ``.`` as ``-``; a namespace that had to
change (``Team.A``), or is too long for a user name (32 characters), gets a short hash of
its exact spelling appended, so two namespaces never share a name by accident. The
user's comment, ``micro namespace <namespace>``, is how an existing user is recognised as
ours: a user of that name with any other comment is somebody else's and is never taken
over. Two servers creating the same user at once both end up with it: whoever loses the
race reads the winner's.
"""

from __future__ import annotations

import asyncio
import hashlib
import pwd
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Final

__all__ = ["Identity", "UserError", "ensure_user", "user_name"]

PREFIX: Final = "micro-"
_MAX_NAME: Final = 32
_HASH: Final = 8
_USERADD_BUSY: Final = 10
"""useradd's exit code when it cannot lock /etc/passwd (another useradd holds it)."""


class UserError(Exception):
    """A namespace's user cannot be had; ``str(exc)`` says why, for the service's status."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a namespace's processes run as."""

    name: str
    uid: int
    gid: int


def user_name(namespace: str) -> str:
    """The system user of ``namespace`` (see the module docstring)."""
    clean = re.sub(r"[^a-z0-9_-]", "-", namespace.lower().replace(".", "-"))
    name = PREFIX + clean
    if clean != namespace or len(name) > _MAX_NAME:
        digest = hashlib.sha256(namespace.encode()).hexdigest()[:_HASH]
        name = f"{PREFIX}{clean[: _MAX_NAME - len(PREFIX) - _HASH - 1]}-{digest}"
    return name


def _comment(namespace: str) -> str:
    return f"micro namespace {namespace}"


def _lookup(namespace: str) -> Identity | None:
    """The namespace's user if it exists and is ours; UserError if the name is taken."""
    name = user_name(namespace)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    if entry.pw_gecos != _comment(namespace):
        raise UserError(
            f"the system user {name} exists but is not the one micro made for namespace "
            f"{namespace} (its comment is {entry.pw_gecos!r}): remove or rename it"
        )
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise UserError(f"the system user {name} has uid or gid 0: it would not isolate anything")
    return Identity(name, entry.pw_uid, entry.pw_gid)


_made: dict[str, Identity] = {}
_lock = threading.Lock()


async def ensure_user(namespace: str) -> Identity:
    """The user ``namespace``'s processes run as, created when missing (needs root)."""
    found = _made.get(namespace)
    if found is None:
        found = await asyncio.to_thread(_ensure, namespace)
    return found


def _ensure(namespace: str) -> Identity:
    with _lock:  # one useradd at a time from this process
        found = _made.get(namespace) or _lookup(namespace) or _create(namespace)
        _made[namespace] = found
        return found


def _create(namespace: str) -> Identity:
    name = user_name(namespace)
    command = [
        "useradd", "--system", "--user-group", "--no-create-home",
        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
        "--comment", _comment(namespace), name,
    ]  # fmt: skip
    for attempt in range(20):
        try:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UserError(f"cannot create the system user {name}: {exc}") from None
        if done.returncode == _USERADD_BUSY:  # another process's useradd holds the lock
            time.sleep(0.05 * (attempt + 1))
            continue
        # made by us, or by another server meanwhile: either way it is there now
        found = _lookup(namespace)
        if found is not None:
            return found
        reason = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise UserError(f"cannot create the system user {name}: {reason}")
    raise UserError(f"cannot create the system user {name}: /etc/passwd stayed locked")
