"""The launcher of a sandboxed process: ``python -I -m micro.runtime.jail``, run as root.

It reads a JSON spec on stdin (what :mod:`micro.runtime.sandbox` writes), then, in this
order:

1. enters a mount namespace of its own (``unshare(CLONE_NEWNS)``), every mount private;
2. opens every folder it will bind (``O_PATH``), while they are still visible;
3. mounts a tmpfs on each ``tmpfs`` path, shallowest first: fresh world-writable scratch
   (``/tmp``, ``/var/tmp``, ``/dev/shm``), or an empty skeleton over a folder the
   process must not see or cannot traverse (``/root`` when the interpreter lives there);
4. bind-mounts each ``binds`` source at its target (read-only unless ``writable``),
   creating the target in its tmpfs: the interpreter, the platform's code, and the
   service's folders at their canonical places (``/srv/app``, ``/srv/home``, ``/srv/venv``);
5. mounts an empty tmpfs on each ``hide`` path that is visible (the server's
   ``MICRO_HOME``), last, so no bind can show what lies there;
6. mounts a fresh ``/proc`` with ``hidepid=invisible``: the process sees its own user's
   processes only, never the server's or another namespace's;
7. drops to the spec's uid and gid, no supplementary groups, no new privileges ever
   (``PR_SET_NO_NEW_PRIVS``), goes to ``cwd`` and execs ``argv`` with ``env``.

The environment and arguments come in the spec, never in the launcher's own environment
(which is the server's choice, minimal), so nothing a tenant chooses reaches a process
running as root. A failure before the exec prints one line, ``micro: ...``, and exits
with 126 (setting up) or 127 (the exec itself): the runtime shows it as the reason the
service is in error. Being a separate process is the point: ``preexec_fn`` is not safe
in the threaded server.

Standard library only, so it starts in milliseconds.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import stat
import sys
from typing import Any, NoReturn

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _depth(path: str) -> int:
    return len([part for part in path.split("/") if part])


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _make_target(target: str, is_dir: bool, skeletons: list[str]) -> None:
    """Create a bind's mount point, inside one of the launcher's tmpfs only (never on the
    host's disk)."""
    if os.path.lexists(target):
        return
    if not any(_under(target, folder) for folder in skeletons):
        raise OSError(errno.ENOENT, f"{target} does not exist")
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))


def _enter(spec: dict[str, Any]) -> None:
    """Steps 1 to 6 of the module docstring."""
    binds = sorted(spec["binds"], key=lambda bind: _depth(bind["target"]))
    _check(_libc.unshare(_CLONE_NEWNS), "unshare")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    # opened in the new namespace (a bind's source must be one of its mounts), before
    # anything covers them
    opened = [os.open(bind["source"], os.O_PATH | os.O_CLOEXEC) for bind in binds]
    skeletons = []
    for fs in sorted(spec["tmpfs"], key=lambda fs: _depth(fs["path"])):
        path = fs["path"]
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(
            "tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode={fs['mode']},size={fs['size']}"
        )
        skeletons.append(path)
    for bind, fd in zip(binds, opened, strict=True):
        target = bind["target"]
        _make_target(target, stat.S_ISDIR(os.fstat(fd).st_mode), skeletons)
        _mount(f"/proc/self/fd/{fd}", target, None, _MS_BIND)
        flags = _MS_BIND | _MS_REMOUNT | _MS_NOSUID | _MS_NODEV
        _mount(None, target, None, flags | (0 if bind["writable"] else _MS_RDONLY))
        os.close(fd)
    for path in spec["hide"]:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_RDONLY, "mode=0755,size=4k")
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "hidepid=invisible")


def _become(uid: int, gid: int) -> None:
    """Step 7's drop: after it no capability is left, and none can be gained back."""
    if uid == 0 or gid == 0:
        raise ValueError("refusing to run a sandboxed process as root")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def _fail(code: int, message: str) -> NoReturn:
    print(f"micro: {message}", file=sys.stderr, flush=True)
    os._exit(code)


def main() -> NoReturn:
    """Read the spec, set up, exec (see the module docstring)."""
    try:
        os.umask(0o022)  # the skeleton must be enterable (the server's umask is 077)
        spec = json.loads(sys.stdin.buffer.read())
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        _enter(spec)
        _become(int(spec["uid"]), int(spec["gid"]))
        os.chdir(spec["cwd"])
        argv = [str(arg) for arg in spec["argv"]]
        env = {str(key): str(value) for key, value in spec["env"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _fail(126, f"cannot set up the sandbox: {exc}")
    try:
        os.execve(argv[0], argv, env)
    except OSError as exc:
        if exc.errno == errno.E2BIG:
            _fail(127, f"cannot start {argv[0]}: its environment is too large for a process")
        _fail(127, f"cannot start {argv[0]}: {exc.strerror}")


if __name__ == "__main__":
    main()
