"""Git repositories fetched once per ref, and the credentials a private one needs.

A monorepo holds many services: each of them run from the same ref would otherwise clone
the whole repository again. :class:`RepoCache` keeps one clone per (namespace,
repository, commit) and hands out copies of it: a branch is resolved to its commit first
(``git ls-remote``), so an update of a branch that moved fetches anew while a tag or a
commit is fetched once. Clones are per namespace: one tenant's credentials never fetch
what another tenant runs.

Credentials (:func:`credential_env`) reach git through its environment
(``GIT_CONFIG_*``: an ``http.<url>.extraHeader`` scoped to the repository's host), never
its arguments, so neither ``ps`` nor a log line shows them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import urllib.parse
from pathlib import Path
from typing import Final

from micro.runtime.source import GitSource, SourceError, fetch_git, git_output

__all__ = ["RepoCache", "credential_env", "host_of"]

_USER: Final = "x-access-token"
"""The user name sent with a bare token (GitHub, Gitea and GitLab take any)."""


def host_of(url: str) -> str:
    """The host of an ``http(s)`` git URL, lower-cased; ``""`` for any other URL."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() not in ("http", "https"):
        return ""
    return (parsed.hostname or "").lower()


def credential_env(url: str, token: str) -> dict[str, str]:
    """Environment that makes git send ``token`` to ``url``'s host (HTTP basic auth,
    ``user:token`` or a bare token); empty without a token or for a non-HTTP URL."""
    parsed = urllib.parse.urlsplit(url)
    if not token or parsed.scheme.lower() not in ("http", "https"):
        return {}
    user, sep, secret = token.partition(":")
    pair = token if sep and user else f"{_USER}:{token if not sep else secret}"
    basic = base64.b64encode(pair.encode()).decode()
    scope = f"{parsed.scheme}://{parsed.netloc}/"
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{scope}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _copy(src: Path, dest: Path) -> None:
    """The checkout without ``.git`` (the service needs its files, not their history)."""
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))


class RepoCache:
    """Clones under ``root/<namespace>/<repository>/<commit>``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._locks: dict[Path, asyncio.Lock] = {}

    async def checkout(
        self, namespace: str, git: GitSource, dest: Path, *, token: str = "", timeout: float = 300.0
    ) -> str:
        """Copy ``git`` at its ref into ``dest`` (which must not exist), fetching the
        repository only when no clone of that commit is cached; the commit's sha.
        SourceError as :func:`~micro.runtime.source.fetch_git`, or for a missing folder."""
        env = credential_env(git.url, token)
        repo = self._root / namespace / _digest(git.url)
        resolved = await _resolve(git, env, timeout)
        clone = repo / _digest(resolved or git.ref or "HEAD")
        lock = self._locks.setdefault(clone, asyncio.Lock())
        async with lock:
            if not (clone / ".git").is_dir():
                plain = GitSource(git.url, git.ref)
                await fetch_git(plain, clone, timeout=timeout, env=env)
        sha = await git_output(clone, "rev-parse", "HEAD")
        if git.folder and not (clone / git.folder).is_dir():
            shown = f"{git.url}@{git.ref}" if git.ref else git.url
            raise SourceError(f"folder {git.folder!r} not found in {shown}")
        await asyncio.to_thread(_copy, clone, dest)
        return sha


async def _resolve(git: GitSource, env: dict[str, str], timeout: float) -> str:
    """The commit a branch or tag names now (``""`` for a commit, or when the server
    will not say: the ref itself then keys the cache)."""
    ref = git.ref or "HEAD"
    patterns = [ref] if ref == "HEAD" else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    patterns += [f"{p}^{{}}" for p in patterns if p.startswith("refs/tags/")]
    out = await git_output(None, "ls-remote", "--", git.url, *patterns, env=env, timeout=timeout)
    shas: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        shas[name] = sha
    for pattern in reversed(patterns):  # a tag's peeled commit first
        if pattern in shas:
            return shas[pattern]
    return ""
