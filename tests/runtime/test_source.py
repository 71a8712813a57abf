"""micro.runtime.source: packing a folder, unpacking it safely, and cloning from git.

Git tests use bare repositories made in ``tmp_path`` and ``file://`` URLs only: nothing
here reaches the network.
"""

from __future__ import annotations

import base64
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests._support import git, write

from micro.runtime import source as source_module
from micro.runtime.source import (
    GitSource,
    SourceError,
    check_archive,
    fetch_git,
    pack,
    parse_git,
    service_name,
    unpack,
)

# --------------------------------------------------------------------------- pack / unpack


def files_under(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def service(tmp_path: Path) -> Path:
    """A service folder with code to keep and clutter to leave out."""
    root = tmp_path / "hello"
    write(root / "main.py", "print('hello')\n")
    write(root / "hello" / "__init__.py", "")
    write(root / "hello" / "deep" / "data.txt", "deep data")
    write(root / "run.sh", "#!/bin/sh\necho hi\n").chmod(0o755)
    (root / "empty").mkdir()
    for clutter in [
        ".git/config",
        ".venv/bin/python",
        "venv/lib/x.py",
        "__pycache__/main.cpython-311.pyc",
        "hello/__pycache__/x.cpython-311.pyc",
        "stray.pyc",
        ".mypy_cache/x",
        ".pytest_cache/x",
        ".ruff_cache/x",
        "node_modules/left-pad/index.js",
        ".tox/py311/x",
        "build/lib/x.py",
        "dist/hello-1.0.tar.gz",
        "hello.egg-info/PKG-INFO",
    ]:
        write(root / clutter)
    return root


def test_pack_unpack_round_trip(service: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "hello"
    unpack(pack(service), dest)
    assert files_under(dest) == {
        "hello/__init__.py": "",
        "hello/deep/data.txt": "deep data",
        "main.py": "print('hello')\n",
        "run.sh": "#!/bin/sh\necho hi\n",
    }
    assert (dest / "empty").is_dir()
    assert os.access(dest / "run.sh", os.X_OK)
    assert not os.access(dest / "main.py", os.X_OK)
    # Nothing besides the destination was left in its parent.
    assert list(dest.parent.iterdir()) == [dest]


def test_pack_leaves_excluded_names_out(service: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(pack(service)), mode="r:gz") as tar:
        names = tar.getnames()
        members = tar.getmembers()
    assert sorted(names) == [
        "empty",
        "hello",
        "hello/__init__.py",
        "hello/deep",
        "hello/deep/data.txt",
        "main.py",
        "run.sh",
    ]
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "" for m in members)


def test_pack_is_deterministic(service: Path) -> None:
    assert pack(service) == pack(service)


def test_pack_keeps_inner_symlinks_and_skips_outer_ones(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    write(root / "main.py", "code")
    write(tmp_path / "secret.txt", "secret")
    (root / "alias.py").symlink_to(root / "main.py")  # absolute, but inside the folder
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (root / "etc").symlink_to("/etc")
    dest = tmp_path / "out"
    unpack(pack(root), dest)
    assert (dest / "alias.py").is_symlink()
    assert os.readlink(dest / "alias.py") == "main.py"
    assert (dest / "alias.py").read_text() == "code"
    assert not (dest / "leak.txt").exists()
    assert not (dest / "etc").exists()


def test_pack_refuses_a_missing_folder_and_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SourceError) as info:
        pack(missing)
    assert str(info.value) == f"folder {missing} does not exist"
    file = write(tmp_path / "main.py")
    with pytest.raises(SourceError) as info:
        pack(file)
    assert str(info.value) == f"{file} is not a folder"


def test_pack_refuses_a_folder_over_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    (root / "noise.bin").write_bytes(os.urandom(64 * 1024))  # incompressible
    with pytest.raises(SourceError) as info:
        pack(root, limit=10_000)
    message = str(info.value)
    assert "too big" in message
    assert "64.0 KiB" in message  # how big
    assert "9.8 KiB" in message  # the limit
    assert len(pack(root, limit=100_000)) > 64 * 1024


def test_unpack_refuses_garbage_and_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "svc"
    with pytest.raises(SourceError, match="cannot unpack"):
        unpack(b"this is not an archive", dest)
    assert list(dest.parent.iterdir()) == []


def test_unpack_refuses_a_folder_that_is_not_empty(service: Path, tmp_path: Path) -> None:
    dest = write(tmp_path / "out" / "already.txt").parent
    with pytest.raises(SourceError, match="not an empty folder"):
        unpack(pack(service), dest)
    # An empty folder is fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    unpack(pack(service), empty)
    assert (empty / "main.py").is_file()


def hostile_tar(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        ok = tarfile.TarInfo("main.py")
        tar.addfile(ok, io.BytesIO(b""))
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return buffer.getvalue()


def file_member(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def link_member(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda tmp: file_member("../evil"), id="dot-dot"),
        pytest.param(lambda tmp: file_member("a/../../evil"), id="dot-dot-inside"),
        pytest.param(lambda tmp: file_member(str(tmp / "evil")), id="absolute"),
        pytest.param(lambda tmp: link_member("etc", "/etc"), id="symlink-to-etc"),
        pytest.param(lambda tmp: link_member("up", "../.."), id="symlink-out"),
    ],
)
def test_unpack_refuses_a_hostile_archive(tmp_path: Path, make: object) -> None:
    assert callable(make)
    data = hostile_tar(make(tmp_path), b"evil")
    dest = tmp_path / "out" / "svc"
    with pytest.raises(SourceError, match="cannot unpack"):
        unpack(data, dest)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "out" / "evil").exists()
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("file:///tmp/r.git", GitSource("file:///tmp/r.git", None)),
        ("file:///tmp/r.git@v1", GitSource("file:///tmp/r.git", "v1")),
        ("file:///tmp/r.git@feature/x", GitSource("file:///tmp/r.git", "feature/x")),
        ("https://github.com/org/repo", GitSource("https://github.com/org/repo", None)),
        ("https://github.com/org/repo@v1.2", GitSource("https://github.com/org/repo", "v1.2")),
        ("http://host.local/x.git", GitSource("http://host.local/x.git", None)),
        ("https://me@host.com/org/repo", GitSource("https://me@host.com/org/repo", None)),
        ("https://me@host.com/org/repo@main", GitSource("https://me@host.com/org/repo", "main")),
        ("ssh://git@host:2222/org/repo.git", GitSource("ssh://git@host:2222/org/repo.git", None)),
        ("ssh://git@host/org/repo@dev", GitSource("ssh://git@host/org/repo", "dev")),
        ("git@github.com:org/repo", GitSource("git@github.com:org/repo", None)),
        ("git@github.com:org/repo.git@v1", GitSource("git@github.com:org/repo.git", "v1")),
        ("github.com/org/repo", GitSource("https://github.com/org/repo", None)),
        (
            "github.com/org/repo/sub@abc123",
            GitSource("https://github.com/org/repo", "abc123", "sub"),
        ),
        (
            "file:///srv/git/mono.git//services/hello@v1",
            GitSource("file:///srv/git/mono.git", "v1", "services/hello"),
        ),
        (
            "file:///srv/git/mono.git/services/hello@feature/x",
            GitSource("file:///srv/git/mono.git", "feature/x", "services/hello"),
        ),
        (
            "https://git.example.com/a/b/c//svc",
            GitSource("https://git.example.com/a/b/c", None, "svc"),
        ),
        ("git@github.com:org/repo//a/b@v1", GitSource("git@github.com:org/repo", "v1", "a/b")),
        ("gitlab.com/org/repo/x/y", GitSource("https://gitlab.com/org/repo", None, "x/y")),
        (
            "  github.com/org/repo@release/2.0 ",
            GitSource("https://github.com/org/repo", "release/2.0"),
        ),
        ("./dir", None),
        (".", None),
        ("..", None),
        ("hello", None),
        ("hello@v1", None),
        ("/abs/path", None),
        ("dir/sub/deeper", None),
        ("./github.com/org/repo", None),
        ("github.com", None),
        ("github.com/org", None),
    ],
)
def test_parse_git(text: str, expected: GitSource | None) -> None:
    assert parse_git(text) == expected
    if expected is not None:  # the canonical form reads back the same
        assert parse_git(str(expected)) == expected


def test_parse_git_refuses_a_folder_that_leaves_the_repository() -> None:
    with pytest.raises(SourceError, match=r"'\.\.'"):
        parse_git("file:///srv/mono.git//../etc@v1")


@pytest.mark.parametrize("text", ["github.com/org/repo@", "file:///tmp/r.git@"])
def test_parse_git_refuses_an_empty_ref(text: str) -> None:
    with pytest.raises(SourceError, match="empty ref"):
        parse_git(text)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("file:///tmp/x/hello.git@v1", "hello"),
        ("file:///tmp/x/hello", "hello"),
        ("github.com/org/repo", "repo"),
        ("https://github.com/org/repo/", "repo"),
        ("git@github.com:org/repo.git", "repo"),
        ("git@github.com:repo@main", "repo"),
        ("./foo/bar/", "bar"),
        ("foo/bar", "bar"),
        ("/abs/path/svc", "svc"),
        ("file:///srv/git/mono.git//services/hello@v1", "hello"),
        ("github.com/micro/services/helloworld@v1", "helloworld"),
    ],
)
def test_service_name(source: str, name: str) -> None:
    assert service_name(source) == name


def test_service_name_of_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "my-service"
    (here / "sub").mkdir(parents=True)
    monkeypatch.chdir(here / "sub")
    assert service_name(".") == "sub"
    assert service_name("..") == "my-service"


def test_service_name_of_the_root_is_an_error() -> None:
    with pytest.raises(SourceError, match="cannot tell a service name"):
        service_name("/")


# --------------------------------------------------------------------------- git


@dataclass
class Repo:
    url: str
    main: str  # the default branch's tip: version "three"
    tag: str  # v1: version "one"
    middle: str  # neither a branch tip nor a tag: version "two"
    feature: str  # feature/x: version "feature"


def commit(work: Path, version: str) -> str:
    (work / "version.txt").write_text(version)
    git(work, "add", "version.txt")
    git(work, "commit", "--quiet", "-m", version)
    return git(work, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A bare repository: main one -> two -> three, tag v1 on one, feature/x off one."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "--quiet", "--initial-branch=main")
    one = commit(work, "one")
    git(work, "tag", "v1")
    two = commit(work, "two")
    three = commit(work, "three")
    git(work, "checkout", "--quiet", "-b", "feature/x", one)
    feature = commit(work, "feature")
    git(work, "checkout", "--quiet", "main")
    git(tmp_path, "clone", "--quiet", "--bare", str(work), "repo.git")
    return Repo((tmp_path / "repo.git").as_uri(), three, one, two, feature)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (None, "main"),
        ("main", "main"),
        ("v1", "tag"),
        ("feature/x", "feature"),
        ("full-sha", "middle"),
        ("short-sha", "middle"),
    ],
)
async def test_fetch_git(repo: Repo, tmp_path: Path, ref: str | None, expected: str) -> None:
    sha = getattr(repo, expected)
    if ref == "full-sha":
        ref = repo.middle
    elif ref == "short-sha":
        ref = repo.middle[:7]
    dest = tmp_path / "sources" / "hello"
    got = await fetch_git(GitSource(repo.url, ref), dest, timeout=60)
    assert got == sha
    version = {"main": "three", "tag": "one", "middle": "two", "feature": "feature"}[expected]
    assert (dest / "version.txt").read_text() == version
    assert (dest / ".git").is_dir()
    assert list(dest.parent.iterdir()) == [dest]


async def test_fetch_git_of_a_missing_repository(tmp_path: Path) -> None:
    url = (tmp_path / "nope.git").as_uri()
    dest = tmp_path / "sources" / "hello"
    for ref in (None, "v1"):
        with pytest.raises(SourceError) as info:
            await fetch_git(GitSource(url, ref), dest, timeout=60)
        assert str(info.value).startswith(f"cannot clone {url}: ")
        assert "does not appear to be a git repository" in str(info.value)
        assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("ref", ["nope", "deadbeef"])  # a branch name, and a would-be commit
async def test_fetch_git_of_a_missing_ref(repo: Repo, tmp_path: Path, ref: str) -> None:
    dest = tmp_path / "sources" / "hello"
    with pytest.raises(SourceError) as info:
        await fetch_git(GitSource(repo.url, ref), dest, timeout=60)
    assert str(info.value) == f"ref {ref!r} not found in {repo.url}"
    assert list(dest.parent.iterdir()) == []


async def test_fetch_git_refuses_an_existing_destination(repo: Repo, tmp_path: Path) -> None:
    dest = tmp_path / "hello"
    dest.mkdir()
    with pytest.raises(SourceError, match="already exists"):
        await fetch_git(GitSource(repo.url), dest, timeout=60)


async def test_fetch_git_times_out(repo: Repo, tmp_path: Path) -> None:
    dest = tmp_path / "sources" / "hello"
    with pytest.raises(SourceError, match=r"^git timed out after 0s$"):
        await fetch_git(GitSource(repo.url), dest, timeout=0)
    assert list(dest.parent.iterdir()) == []


# --------------------------------------------------------------------------- limits


def test_unpack_refuses_an_archive_over_the_limits_before_writing(
    service: Path, tmp_path: Path
) -> None:
    data = pack(service)
    dest = tmp_path / "out" / "svc"
    with pytest.raises(SourceError, match=r"the source unpacks to more than 10 bytes"):
        unpack(data, dest, max_bytes=10)
    with pytest.raises(SourceError, match=r"the source holds more than 1 files and folders"):
        check_archive(data, max_files=1)
    assert list(dest.parent.iterdir()) == []
    check_archive(data)  # within the default limits
    unpack(data, dest)
    assert (dest / "main.py").is_file()


def test_pack_refuses_what_the_server_would_not_unpack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "svc" / "main.py", "x" * 100)
    monkeypatch.setattr(source_module, "MAX_UNPACKED", 50)
    with pytest.raises(SourceError, match=r"holds more than 50 bytes of files"):
        pack(tmp_path / "svc")
    monkeypatch.setattr(source_module, "MAX_FILES", 0)
    with pytest.raises(SourceError, match=r"holds more than 0 files and folders"):
        pack(tmp_path / "svc")


def test_pack_of_parts_keeps_their_places_in_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "services" / "hello").mkdir(parents=True)
    (root / "services" / "hello" / "main.py").write_text("print()\n")
    (root / "services" / "other").mkdir()
    (root / "services" / "other" / "main.py").write_text("print()\n")
    (root / "libs" / "shared").mkdir(parents=True)
    (root / "libs" / "shared" / "x.py").write_text("X = 1\n")
    data = pack(root, parts=[root / "services" / "hello", root / "libs" / "shared"])
    out = tmp_path / "out"
    unpack(data, out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["libs/shared/x.py", "services/hello/main.py"]


def test_credentials_reach_git_by_its_environment_only() -> None:
    from micro.runtime.repos import credential_env

    env = credential_env("https://git.example.com/org/repo.git", "s3cret")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example.com/.extraHeader"
    basic = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(basic) == b"x-access-token:s3cret"
    assert credential_env("git@github.com:org/repo", "s3cret") == {}
    assert credential_env("https://h/r", "") == {}


def test_a_folder_of_a_file_source_is_checked_by_its_repository(tmp_path: Path) -> None:
    """The ``file://`` roots rule sees through a folder: the repository is what is read."""
    from micro.runtime.source import outside_roots

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    assert outside_roots(f"file://{allowed}/mono.git//services/x@v1", (allowed,)) is None
    assert outside_roots("file:///etc/mono.git//services/x@v1", (allowed,)) == Path("/etc/mono.git")
    assert outside_roots(f"file://{allowed}/../mono.git/x", (allowed,)) == Path(
        f"{allowed}/../mono.git"
    )
