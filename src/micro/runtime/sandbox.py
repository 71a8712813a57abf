"""Where, and as whom, the runtime's processes run: services and their builds.

A server run as root (:class:`Jail`) runs every process of a namespace as that
namespace's own unprivileged user (:mod:`micro.runtime.users`), through the launcher
:mod:`micro.runtime.jail`, in a view of the machine where:

- the server's ``MICRO_HOME`` (keys, databases, tokens, other services' files) is not
  there at all, nor any process but the namespace's own (``/proc`` with ``hidepid``);
- ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are the process's own;
- its folders are at fixed places: ``/srv/app`` (its source, read-only once built),
  ``/srv/home`` (its home and ``MICRO_HOME``, writable), ``/srv/venv`` (its virtualenv,
  read-only once built), so a virtualenv built in the sandbox runs as is;
- the interpreter and the platform's own code are visible read-only, even when they live
  in a folder the user could not enter (``/root/.pyenv``).

A server not run as root (:class:`Shared`) cannot switch users: its processes run as
itself and could read everything it can, its keys included. It therefore runs only the
services of its own namespace, ``micro``, unless ``MICRO_INSECURE_SHARED_UID`` says every
namespace is trusted. That setting also turns the jail off on a root server (a host
without mount namespaces): then every service runs as the server, root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from micro.runtime.users import Identity, UserError, ensure_user
from micro.settings import Settings

__all__ = ["LAUNCHER", "Jail", "Place", "Sandbox", "SandboxError", "Shared", "for_server"]

log = logging.getLogger("micro.runtime")

OWN_NAMESPACE: Final = "micro"
_OUTPUT_LIMIT: Final = 1024 * 1024
"""The longest line read at once from a process's output."""
_SRV: Final = Path("/srv")
_SCRATCH: Final = ("/tmp", "/var/tmp", "/dev/shm")
_SCRATCH_SIZE: Final = "256m"


LAUNCHER: Final = (sys.executable, "-I", "-m", "micro.runtime.jail")
"""The command that runs a process as :meth:`Jail.spec` says (see :mod:`micro.runtime.jail`)."""


class SandboxError(Exception):
    """A process that may not or cannot be started; ``str(exc)`` says why to the user."""


@dataclass(frozen=True, slots=True)
class Place:
    """The host folders a process works with."""

    app: Path
    """Its source, and its working folder."""
    home: Path
    """Its home: ``HOME`` and ``MICRO_HOME`` of a service, the installers' cache of a build."""
    venv: Path
    """Its virtualenv."""
    build: bool = False
    """A build writes its source and virtualenv; a service only its home."""
    folder: str = ""
    """The working folder, relative to ``app``: a service in a folder of a repository
    works there, with the whole repository (its shared code) beside it."""

    @property
    def cwd(self) -> Path:
        """Where the process works: ``app``, or its ``folder``."""
        return self.app / self.folder if self.folder else self.app


async def _start(
    argv: list[str], *, cwd: Path | str, env: dict[str, str], stdin: int
) -> asyncio.subprocess.Process:
    """A process in a session (process group) of its own, stopped as a whole; its stderr
    merged into its stdout, read by the caller."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        limit=_OUTPUT_LIMIT,
    )


class Sandbox(ABC):
    """Starts a namespace's processes (output on ``stdout``, stderr merged into it)."""

    @abstractmethod
    def check(self, namespace: str) -> None:
        """SandboxError when this server will not run ``namespace``'s processes."""

    @abstractmethod
    def seen(self, place: Place) -> Place:
        """``place`` as the process sees it."""

    async def hand_over(self, namespace: str, path: Path, *, tree: bool = False) -> None:  # noqa: B027 - nothing to do unless users differ
        """Make ``path`` (with ``tree``, all it holds) the namespace's user's."""

    @abstractmethod
    async def spawn(
        self, namespace: str, place: Place, argv: list[str], env: dict[str, str]
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` (paths as :meth:`seen`) in ``place.app``; OSError or SandboxError
        when it cannot be started at all."""


class Shared(Sandbox):
    """Processes run as the server's own user, with the server's view of the machine."""

    def __init__(self, *, insecure: bool) -> None:
        self.insecure = insecure

    def check(self, namespace: str) -> None:
        if namespace == OWN_NAMESPACE or self.insecure:
            return
        raise SandboxError(
            f"this server cannot run the services of namespace {namespace}: it does not run "
            "as root, so they would run as its own user and could read its keys and every "
            "other service's files. Run the server as root (each namespace then gets a user "
            "of its own), or set MICRO_INSECURE_SHARED_UID=1 (--insecure_shared_uid) if "
            "every namespace's admins are trusted with the whole platform"
        )

    def seen(self, place: Place) -> Place:
        return place

    async def spawn(
        self, namespace: str, place: Place, argv: list[str], env: dict[str, str]
    ) -> asyncio.subprocess.Process:
        self.check(namespace)
        return await _start(argv, cwd=place.cwd, env=env, stdin=asyncio.subprocess.DEVNULL)


def _traversable(path: Path) -> bool:
    """Whether a user that is neither owner nor group member may enter ``path``."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IXOTH)


def _readable(path: Path) -> bool:
    """Whether a user that is neither owner nor group member may read ``path``."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    wanted = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & wanted == wanted


def _blocked_ancestor(path: Path) -> Path | None:
    """The first folder on the way to ``path`` that others may not enter, if any."""
    for ancestor in reversed(path.parents):
        if ancestor != Path("/") and not _traversable(ancestor):
            return ancestor
    return None


def _under(path: Path, folders: list[Path]) -> bool:
    return any(path.is_relative_to(folder) for folder in folders)


class Jail(Sandbox):
    """Each namespace's processes as its own user, in the view the module docstring
    describes. ``hidden`` are the server's folders (its ``MICRO_HOME``); ``needed`` what
    every process must see besides the interpreter and the platform's code."""

    app: Final = _SRV / "app"
    home: Final = _SRV / "home"
    venv: Final = _SRV / "venv"

    def __init__(self, hidden: list[Path], needed: list[Path] = []) -> None:  # noqa: B006 - read only
        wanted = [Path(sys.base_prefix), Path(sys.prefix), *needed]
        wanted += [Path(entry) for entry in sys.path if entry and Path(entry).is_dir()]
        wanted += [Path(os.path.realpath(path)) for path in wanted]
        # what others could not read even once shown (the server's working folder on
        # sys.path, say /root) is left out: shown, it would hide what lies beneath it
        wanted = [path for path in wanted if _readable(path)]
        scratch = [Path(path) for path in _SCRATCH]
        skeletons = {_SRV}
        for path in wanted:
            blocked = _blocked_ancestor(path)
            if blocked is not None:
                skeletons.add(blocked)
        covered = [*skeletons, *scratch]
        binds: list[Path] = []
        for path in sorted(set(wanted), key=lambda p: len(p.parts)):
            if _under(path, covered) and not _under(path, binds) and path.exists():
                binds.append(path)
        self._tmpfs = [{"path": str(p), "mode": "1777", "size": _SCRATCH_SIZE} for p in scratch]
        self._tmpfs += [{"path": str(p), "mode": "0755", "size": "1m"} for p in sorted(skeletons)]
        self._binds = [{"source": str(p), "target": str(p), "writable": False} for p in binds]
        self._hidden = [str(path) for path in hidden]

    def check(self, namespace: str) -> None:
        return

    def seen(self, place: Place) -> Place:
        return replace(place, app=self.app, home=self.home, venv=self.venv)

    def spec(
        self,
        uid: int,
        gid: int,
        argv: list[str],
        env: dict[str, str],
        *,
        cwd: Path,
        binds: list[tuple[Path, Path, bool]],
    ) -> dict[str, object]:
        """What :data:`LAUNCHER` reads on its stdin to run ``argv`` as ``uid``/``gid`` in
        this view, with ``binds`` (source, target, writable) besides."""
        extra = [{"source": str(s), "target": str(t), "writable": w} for s, t, w in binds]
        return {
            "uid": uid,
            "gid": gid,
            "tmpfs": self._tmpfs,
            "binds": [*self._binds, *extra],
            "hide": self._hidden,
            "argv": argv,
            "env": env,
            "cwd": str(cwd),
        }

    async def hand_over(self, namespace: str, path: Path, *, tree: bool = False) -> None:
        user = await self._user(namespace)
        await asyncio.to_thread(_chown, path, user.uid, user.gid, tree)

    async def spawn(
        self, namespace: str, place: Place, argv: list[str], env: dict[str, str]
    ) -> asyncio.subprocess.Process:
        user = await self._user(namespace)
        env = {**env, "HOME": str(self.home), "USER": user.name, "LOGNAME": user.name}
        if place.build:  # the installers' caches in the build's home, not the server's
            env.update(
                UV_CACHE_DIR=str(self.home / ".cache" / "uv"),
                PIP_CACHE_DIR=str(self.home / ".cache" / "pip"),
            )
        own = [
            (place.app, self.app, place.build),
            (place.home, self.home, True),
            (place.venv, self.venv, place.build),
        ]
        spec = self.spec(user.uid, user.gid, argv, env, cwd=self.seen(place).cwd, binds=own)
        env_of_root = {"PATH": os.defpath}  # nothing of the tenant's while root
        proc = await _start([*LAUNCHER], cwd="/", env=env_of_root, stdin=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(spec).encode())
        with contextlib.suppress(ConnectionError):  # it died at once: its output says why
            await proc.stdin.drain()
        proc.stdin.close()
        return proc

    async def _user(self, namespace: str) -> Identity:
        try:
            return await ensure_user(namespace)
        except UserError as exc:
            raise SandboxError(str(exc)) from None


def _chown(path: Path, uid: int, gid: int, tree: bool) -> None:
    """``lchown`` ``path`` (and with ``tree`` all below it), never following a link."""
    os.lchown(path, uid, gid)
    if not tree:
        return
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(folder, name), uid, gid)


def for_server(settings: Settings, *, needed: list[Path]) -> Sandbox:
    """The sandbox of the server ``settings`` describe (see the module docstring)."""
    if settings.insecure_shared_uid:
        log.warning(
            "runtime: MICRO_INSECURE_SHARED_UID is set: every namespace's services run as "
            "this server's user, unconfined, and can read its keys"
        )
    if settings.insecure_shared_uid or os.geteuid() != 0:
        return Shared(insecure=settings.insecure_shared_uid)
    return Jail([settings.home], needed)
