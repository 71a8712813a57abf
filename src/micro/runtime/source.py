"""A service's source, onto disk: a local folder packed and unpacked, or a git repository.

The CLI packs a folder with :func:`pack` and uploads the bytes; the server unpacks them
with :func:`unpack`. A git source (:func:`parse_git`) is cloned by the server with
:func:`fetch_git`. Both write into a temporary sibling of the destination and rename it
into place, so a failure never leaves a half-written source that looks complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import os
import re
import secrets
import shutil
import signal
import tarfile
import tempfile
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "EXCLUDED",
    "FORGES",
    "MAX_FILES",
    "MAX_UNPACKED",
    "GitSource",
    "SourceError",
    "check_archive",
    "fetch_git",
    "file_path",
    "git_output",
    "outside_roots",
    "pack",
    "parse_git",
    "service_name",
    "split_upload",
    "unpack",
]


class SourceError(Exception):
    """A source that cannot be packed, unpacked or fetched; ``str(exc)`` is a user-facing
    message."""


EXCLUDED: Final = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
        ".tox",
        "build",
        "dist",
        "*.egg-info",
        "*.pyc",
    }
)
"""Names never packed: version control, virtualenvs, caches and build output. The server
builds its own virtualenv, so shipping the developer's would only cost upload time. Entries
starting with ``*`` match by suffix."""

_EXCLUDED_NAMES: Final = frozenset(name for name in EXCLUDED if not name.startswith("*"))
_EXCLUDED_SUFFIXES: Final = tuple(name[1:] for name in EXCLUDED if name.startswith("*"))


def _excluded(name: str) -> bool:
    return name in _EXCLUDED_NAMES or name.endswith(_EXCLUDED_SUFFIXES)


# --------------------------------------------------------------------------- pack / unpack


MAX_UNPACKED: Final = 256 * 1024 * 1024
"""The most an uploaded source may unpack to (bytes of its files)."""
MAX_FILES: Final = 20_000
"""The most entries (files, folders, links) an uploaded source may hold."""


class _TooBig(Exception):
    pass


class _CappedBuffer(io.BytesIO):
    """Raises :class:`_TooBig` once past ``limit`` bytes, so a huge folder is refused
    without first compressing all of it into memory."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.over = False

    def write(self, data: bytes) -> int:  # type: ignore[override]  # bytes is all gzip writes
        if self.over:
            return len(data)  # the archive is being abandoned: gzip's closing flush
        if self.tell() + len(data) > self.limit:
            self.over = True
            raise _TooBig
        return super().write(data)


def _entries(root: Path, folder: Path) -> Iterator[Path]:
    """What :func:`pack` keeps under ``folder``, sorted, parents before children."""
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        if _excluded(entry.name):
            continue
        path = Path(entry.path)
        if entry.is_symlink():
            try:
                target = path.resolve()
            except (OSError, RuntimeError):  # a symlink loop
                continue
            if target.is_relative_to(root):
                yield path
        elif entry.is_dir():
            yield path
            yield from _entries(root, path)
        elif entry.is_file():
            yield path
        # sockets, fifos and devices are not source


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"


def _check_fits(folder: Path, count: int, size: int) -> None:
    """What the server would refuse to unpack is refused before it is sent."""
    if count > MAX_FILES:
        raise SourceError(
            f"{folder} holds more than {MAX_FILES} files and folders, the most the server "
            "unpacks; move data and build output out of the folder"
        )
    if size > MAX_UNPACKED:
        raise SourceError(
            f"{folder} holds more than {_size(MAX_UNPACKED)} of files, the most the server "
            "unpacks; move data and build output out of the folder"
        )


def _selected(root: Path, parts: list[Path]) -> Iterator[Path]:
    """What :func:`pack` keeps of ``parts`` (folders under ``root``): each with the
    folders that lead to it, then what it holds; each path once."""
    seen: set[Path] = set()
    for part in parts:
        rel = part.relative_to(root).parts
        leading = [root.joinpath(*rel[:i]) for i in range(1, len(rel) + 1)]
        for path in [*leading, *_entries(root, part)]:
            if path not in seen:
                seen.add(path)
                yield path


def pack(folder: Path, *, limit: int = 100 * 1024 * 1024, parts: list[Path] | None = None) -> bytes:
    """A gzipped tar of ``folder``'s contents (paths relative to it), without
    :data:`EXCLUDED` names; with ``parts``, only those folders of it (a service's
    folder and the shared code it depends on, from its repository).

    Deterministic, so the same folder gives the same bytes: entries sorted, mtimes kept
    (whole seconds), owner 0:0 without user names, gzip header time 0. Symlinks are kept
    as relative links when they point inside the folder and skipped otherwise (their
    target would not exist on the server). SourceError when ``folder`` is not a folder
    or the archive would be over ``limit`` bytes, or unpack to more than the server takes
    (:data:`MAX_UNPACKED`, :data:`MAX_FILES`).
    """
    if not folder.exists():
        raise SourceError(f"folder {folder} does not exist")
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a folder")
    root = folder.resolve()
    buffer = _CappedBuffer(limit)
    try:
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            size = 0
            chosen = (p.resolve() for p in parts) if parts is not None else None
            walk = _selected(root, list(chosen)) if chosen is not None else _entries(root, root)
            for count, path in enumerate(walk, 1):
                info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
                size += info.size if info.isreg() else 0
                _check_fits(folder, count, size)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = int(info.mtime)
                if info.issym():
                    info.linkname = os.path.relpath(path.resolve(), path.parent)
                if info.isreg():
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
    except _TooBig:
        total = sum(p.stat().st_size for p in _entries(root, root) if p.is_file())
        raise SourceError(
            f"{folder} is too big to send: its files take {_size(total)} and the archive "
            f"passed the limit of {_size(limit)}; move large files (data, build output) "
            "out of the folder"
        ) from None
    except OSError as exc:
        raise SourceError(f"cannot pack {folder}: {exc}") from None
    return buffer.getvalue()


_MAX_HEADER: Final = 1024 * 1024
"""The longest name or pax header tarfile may read in one go."""


class _Bounded:
    """The decompressed archive as tarfile reads it, refused past ``limit`` bytes and at
    any single read over :data:`_MAX_HEADER` (a huge pax header would be read whole)."""

    def __init__(self, raw: gzip.GzipFile, limit: int) -> None:
        self._raw = raw
        self._limit = limit

    def read(self, size: int = -1, /) -> bytes:
        if size < 0 or size > _MAX_HEADER:
            raise SourceError("cannot unpack the source archive: a header is over 1 MiB")
        data = self._raw.read(size)
        self._check()
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        position = self._raw.seek(offset, whence)
        self._check()
        return position

    def tell(self) -> int:
        return self._raw.tell()

    def write(self, data: bytes) -> int:
        raise io.UnsupportedOperation("read only")

    def close(self) -> None:
        self._raw.close()

    def _check(self) -> None:
        if self._raw.tell() > self._limit:
            raise SourceError(f"the source unpacks to more than {_size(self._limit)}")


def _checked(
    tar: tarfile.TarFile, dest: Path, max_bytes: int, max_files: int
) -> list[tarfile.TarInfo]:
    """Every member, once each has been found safe, and the whole within the limits: all
    from the headers, before anything is written. Refused: absolute and ``..`` paths
    (the ``data`` filter would quietly make an absolute path relative), anything but
    files, folders and symlinks (:func:`pack` writes nothing else), sparse files (their
    few bytes may stand for gigabytes), and what the ``data`` filter refuses (device
    files, links leading out of ``dest``)."""
    members = []
    total = 0
    for member in tar:
        name = member.name
        if name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name):
            raise SourceError(f"cannot unpack the source archive: unsafe path {name!r}")
        if not (member.isreg() or member.isdir() or member.issym()) or member.issparse():
            raise SourceError(
                f"cannot unpack the source archive: {name!r} is not a file, folder or symlink"
            )
        tarfile.data_filter(member, str(dest))
        members.append(member)
        total += member.size
        if len(members) > max_files:
            raise SourceError(f"the source holds more than {max_files} files and folders")
        if total > max_bytes:
            raise SourceError(f"the source unpacks to more than {_size(max_bytes)}")
    return members


def _open(data: bytes, max_bytes: int, max_files: int) -> tarfile.TarFile:
    raw = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
    # headers take 512 bytes each, and a name or pax header at most _MAX_HEADER
    bounded = _Bounded(raw, max_bytes + max_files * 1536 + _MAX_HEADER)
    return tarfile.open(fileobj=bounded, mode="r:")


def check_archive(
    data: bytes, *, max_bytes: int = MAX_UNPACKED, max_files: int = MAX_FILES
) -> None:
    """SourceError unless :func:`unpack` would take ``data`` (read, nothing written)."""
    try:
        with _open(data, max_bytes, max_files) as tar:
            _checked(tar, Path("/nonexistent/source"), max_bytes, max_files)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"cannot unpack the source archive: {exc}") from None


def unpack(
    data: bytes, dest: Path, *, max_bytes: int = MAX_UNPACKED, max_files: int = MAX_FILES
) -> None:
    """Extract an archive made by :func:`pack` into ``dest``, which must not exist or be
    empty (its parents are created).

    Safe against a hostile archive: every member is checked before anything is written
    (see :func:`_checked`), so an archive that would unpack to more than ``max_bytes``
    or hold more than ``max_files`` entries (a small upload can expand a thousandfold) is
    refused whole. The archive is extracted into a temporary sibling and renamed into
    place, so a failure leaves nothing behind. SourceError for a corrupt, unsafe or too
    big archive.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SourceError(f"cannot unpack into {dest}: it is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would otherwise become the source folder's mode
        with _open(data, max_bytes, max_files) as tar:
            tar.errorlevel = 1  # a refused member raises instead of being skipped quietly
            members = _checked(tar, tmp, max_bytes, max_files)
            tar.extractall(tmp, members=members, filter="data")
        os.rename(tmp, dest)  # replaces an empty folder; refuses one that filled up meanwhile
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"cannot unpack the source archive: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- git


@dataclass(frozen=True, slots=True)
class GitSource:
    """A git repository, what to check out of it, and the folder the service is in."""

    url: str
    """What to give ``git clone``."""
    ref: str | None = None
    """A branch, tag or commit (full or abbreviated); None for the default branch."""
    folder: str = ""
    """The service's folder in the repository (``services/hello``); empty for its root."""

    def __str__(self) -> str:
        """The canonical form, which :func:`parse_git` reads back to the same source:
        ``url[//folder][@ref]``."""
        text = self.url + (f"//{self.folder}" if self.folder else "")
        return text + (f"@{self.ref}" if self.ref is not None else "")


_SCHEME: Final = re.compile(r"^(?:file|https?|ssh|git|git\+ssh|ssh\+git)://", re.IGNORECASE)
_SCP: Final = re.compile(r"^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:")
_HOST: Final = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/[^/]+/[^/]")
FORGES: Final = frozenset({"github.com", "gitlab.com", "bitbucket.org", "codeberg.org"})
"""Hosts whose repositories are always ``host/org/repo``: what follows is a folder."""


def _host_of(text: str, path_start: int) -> str:
    """The host of a URL or scp-like source (``user@`` and ``:port`` dropped)."""
    head = _SCHEME.sub("", text[:path_start])
    return head.rpartition("@")[2].split(":")[0].lower()


def _split_folder(url: str, path_start: int) -> tuple[str, str]:
    """(repository URL, folder): after an explicit ``//``, else after the first two path
    elements on a known forge, else after the element ending in ``.git``."""
    path = url[path_start:]
    lead = 1 if path.startswith("/") else 0
    sep = path.find("//", lead)
    if sep >= 0:
        return url[: path_start + sep], path[sep + 2 :].strip("/")
    parts = path[lead:].split("/")
    if _host_of(url, path_start) in FORGES and len(parts) > 2:
        cut = 2
    else:
        cut = next((i + 1 for i, p in enumerate(parts[:-1]) if p.endswith(".git")), len(parts))
    repo = url[:path_start] + path[:lead] + "/".join(parts[:cut])
    return repo, "/".join(p for p in parts[cut:] if p)


def parse_git(text: str) -> GitSource | None:
    """The git source ``text`` names, or None when it is not a git URL (a local folder).

    Git URLs are ``file://``, ``http(s)://``, ``ssh://`` (and ``git://``) URLs, scp-like
    ``user@host:path``, and ``host.tld/org/repo[/...]``, which means
    ``https://host.tld/org/repo``. An ``@ref`` may end any of them: the last ``@`` that
    comes after the start of the path (so never a URL's user) and is followed by no
    ``:``. Refs may contain ``/``. SourceError for an empty ref.

    A folder of the repository may follow it: after an explicit ``//`` (any URL:
    ``file:///srv/git/mono.git//services/hello@v1``), after ``org/repo`` on a known forge
    (:data:`FORGES`: ``github.com/org/repo/services/hello``), or after a path element
    ending in ``.git`` (``https://host/x/mono.git/services/hello``). SourceError for a
    folder with ``..``.
    """
    text = text.strip()
    prefix = ""
    if match := _SCHEME.match(text):
        slash = text.find("/", match.end())
        path_start = len(text) if slash < 0 else slash
    elif match := _SCP.match(text):
        path_start = match.end()
    elif _HOST.match(text):
        path_start = text.index("/")
        prefix = "https://"
    else:
        return None
    url, ref = text, None
    at = text.rfind("@")
    if at >= path_start and ":" not in text[at + 1 :]:
        url, ref = text[:at], text[at + 1 :]
        if not ref:
            raise SourceError(f"{text!r} has an empty ref after '@'")
    url, folder = _split_folder(url, path_start)
    if ".." in folder.split("/"):
        raise SourceError(f"{text!r}: the folder may not contain '..'")
    return GitSource(prefix + url.rstrip("/") if folder else prefix + url, ref, folder)


def split_upload(source: str) -> tuple[str, str]:
    """An upload's source id and the folder of it the service is in:
    ``source://hello:latest//services/hello`` gives ``("source://hello:latest",
    "services/hello")``. SourceError for a folder with ``..``."""
    base, _, folder = source.partition("//")[2].partition("//")
    folder = folder.strip("/")
    if ".." in folder.split("/"):
        raise SourceError(f"{source!r}: the folder may not contain '..'")
    return f"source://{base}", folder


def file_path(git: GitSource) -> Path | None:
    """The folder on this machine a ``file://`` source names (``%XX`` decoded, as git
    does), or None for any other URL. SourceError for a ``file://`` URL with a host:
    git would ignore it and read this machine's disk all the same."""
    if not git.url.lower().startswith("file://"):
        return None
    rest = git.url[len("file://") :]
    host, slash, path = rest.partition("/")
    if host.lower() not in ("", "localhost") or not slash:
        raise SourceError(f"{git.url!r}: a file:// URL names a folder of the server, no host")
    return Path("/" + urllib.parse.unquote(path))


def outside_roots(source: str, roots: tuple[Path, ...]) -> Path | None:
    """The folder a ``file://`` source names when its real path (links and ``..``
    resolved) is under none of ``roots``; None for one that is, or another source.
    SourceError for a malformed ``file://`` URL (see :func:`file_path`)."""
    git = parse_git(source)
    path = file_path(git) if git is not None else None
    if path is None:
        return None
    real = Path(os.path.realpath(path))
    if any(real.is_relative_to(os.path.realpath(root)) for root in roots):
        return None
    return path


def service_name(source: str) -> str:
    """The default name of a service run from ``source``: the last path element of the
    folder, of the repository's folder, or of the git URL, without a ``.git`` suffix or ``@ref`` (``file:///x/hello.git@v1``
    gives ``hello``, ``./foo/bar/`` gives ``bar``, ``.`` the current folder's name)."""
    git = parse_git(source)
    if git is not None:
        name = re.split(r"[/:]", (git.folder or git.url).rstrip("/"))[-1]
    else:
        name = Path(os.path.abspath(source.strip() or ".")).name
    name = name.removesuffix(".git")
    if not name:
        raise SourceError(f"cannot tell a service name from {source!r}: give one")
    return name


_COMMIT: Final = re.compile(r"[0-9a-fA-F]{4,64}")
_SHA: Final = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1, or SHA-256 repositories


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # The server's own settings (its keys among them) are none of git's business.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(extra or {})
    env["GIT_TERMINAL_PROMPT"] = "0"  # a private repository fails instead of waiting for a password
    env["LC_ALL"] = "C"  # git's messages in English, which is what we recognise
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"  # nor for a passphrase or host key
    return env


def _reason(stderr: str, rc: int) -> str:
    """git's own words for a failure: its first ``fatal:`` line (the later lines are
    generic advice), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("fatal:"):
            return line.removeprefix("fatal:").strip()
    return lines[-1] if lines else f"git exited with code {rc}"


async def _git(
    *args: str, deadline: float, timeout: float, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run git (no shell, no terminal) until ``deadline`` (loop time): exit code, stdout,
    stderr. Its whole process group is killed on timeout or cancellation. ``env`` adds to
    its environment (credentials: never in its arguments)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            env=_git_env(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its helpers (remote-https, index-pack) die with it
        )
    except FileNotFoundError as exc:
        raise SourceError(f"git is not installed: {exc}") from None
    try:
        async with asyncio.timeout_at(deadline):
            out, err = await proc.communicate()
    except TimeoutError:
        raise SourceError(f"git timed out after {timeout:g}s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    rc = proc.returncode
    assert rc is not None
    return rc, out.decode(errors="replace"), err.decode(errors="replace")


def _make_room(dest: Path) -> None:
    if dest.exists():
        raise SourceError(f"cannot clone into {dest}: it already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)


async def git_output(
    cwd: Path | None, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> str:
    """The stdout of one git command (in repository ``cwd``, when given); SourceError with
    git's reason when it fails."""
    deadline = asyncio.get_running_loop().time() + timeout
    where = ("-C", str(cwd)) if cwd is not None else ()
    rc, out, err = await _git(*where, *args, deadline=deadline, timeout=timeout, env=env)
    if rc != 0:
        url = next((a for a in args if "://" in a or "@" in a), "the repository")
        raise SourceError(f"cannot clone {url}: {_reason(err, rc)}")
    return out.strip()


async def fetch_git(
    source: GitSource, dest: Path, *, timeout: float = 300.0, env: dict[str, str] | None = None
) -> str:
    """Clone ``source`` into ``dest`` (which must not exist), check out ``source.ref``,
    and return the checked-out commit's sha.

    A shallow clone of the branch or tag; a ref that is neither but looks like a commit
    (4 to 64 hex digits) is found in a full clone. The clone happens in a temporary
    sibling renamed into place, removed on any failure; ``.git`` is kept. SourceError
    ("cannot clone <url>: <git's reason>", "ref 'x' not found in <url>", "git timed out
    after Ns", "git is not installed: ..."). ``env`` adds to git's environment.
    """
    _make_room(dest)
    deadline = asyncio.get_running_loop().time() + timeout
    url, ref = source.url, source.ref
    tmp = dest.parent / f".{dest.name}.tmp-{secrets.token_hex(4)}"

    async def git(*args: str) -> tuple[int, str, str]:
        return await _git(*args, deadline=deadline, timeout=timeout, env=env)

    def not_found() -> SourceError:
        return SourceError(f"ref {ref!r} not found in {url}")

    try:
        shallow = ["clone", "--depth", "1", "--quiet"]
        if ref is not None:
            shallow.append(f"--branch={ref}")
        rc, _, err = await git(*shallow, "--", url, str(tmp))
        if rc != 0:
            missing_ref = "not found in upstream" in err or "Could not find remote branch" in err
            if ref is None or not missing_ref:
                raise SourceError(f"cannot clone {url}: {_reason(err, rc)}")
            if not _COMMIT.fullmatch(ref):
                raise not_found()
            shutil.rmtree(tmp, ignore_errors=True)
            rc, _, err = await git("clone", "--no-checkout", "--quiet", "--", url, str(tmp))
            if rc != 0:
                raise SourceError(f"cannot clone {url}: {_reason(err, rc)}")
            rc, out, _ = await git(
                "-C", str(tmp), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"
            )
            if rc != 0:
                raise not_found()
            rc, _, err = await git("-C", str(tmp), "checkout", "--quiet", out.strip())
            if rc != 0:
                raise SourceError(f"cannot check out {ref!r} of {url}: {_reason(err, rc)}")
        rc, out, err = await git("-C", str(tmp), "rev-parse", "HEAD")
        sha = out.strip()
        if rc != 0 or not _SHA.fullmatch(sha):
            raise SourceError(f"cannot read the commit cloned from {url}: {_reason(err, rc)}")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sha
