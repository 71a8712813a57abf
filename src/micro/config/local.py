"""A local copy of one namespace's config tree, kept fresh by a watch: reads cost no RPC.

How it stays fresh: one ``Watch`` of the whole tree (with secrets revealed) whose first
message is the tree as it is, and each later message the tree after a change. Messages
carry the namespace's revision, so an older tree never replaces a newer one; after a
write made through the copy, the copy fetches the tree once so the writer reads its own
write at once. When the stream breaks (server restart), the copy keeps answering from
what it has and follows again with backoff; the first tree of a new stream is taken as
it comes.

Secrets: the copy holds them decrypted, as the service would get them anyway with
``secret=True``, and masks them for plain reads. If the server cannot decrypt them (a
wrong ``MICRO_CONFIG_SECRET_KEY``), the copy follows the masked tree instead: plain reads
go on working and only ``secret=True`` reads of values holding secrets raise the
server's :class:`~micro.config.base.SecretError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Any

from micro import errors
from micro.config._watch import SlotWatcher
from micro.config.base import (
    DEFAULT_NAMESPACE,
    SECRET_MASK,
    Config,
    SecretError,
    Value,
    Watcher,
    split_path,
)

__all__ = ["ConfigCopy"]

log = logging.getLogger("micro.config")

_NO_SECRETS: frozenset[str] = frozenset()
_parts = functools.lru_cache(maxsize=4096)(split_path)


@dataclass(frozen=True, slots=True)
class _State:
    plain: dict[str, Any]
    """The tree, secrets decrypted when ``revealed`` (else masked, like ``masked``)."""
    masked: dict[str, Any]
    secrets: frozenset[str]
    """Full dotted paths of the secret leaves."""
    revision: int
    revealed: bool
    under: dict[str, frozenset[str]]
    """Cache: path -> the secret paths inside it (reads of one path repeat)."""


_UNDER_CACHE = 4096


def _walk(tree: Any, parts: tuple[str, ...]) -> Any:
    node = tree
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
        if node is None:
            return None
    return node


def _copy(node: Any) -> Any:
    """A deep copy of JSON data, so a caller changing what it read cannot change the copy."""
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _mask(tree: dict[str, Any], secrets: frozenset[str]) -> dict[str, Any]:
    masked: dict[str, Any] = _copy(tree)
    for path in secrets:
        *parents, last = path.split(".")
        node = _walk(masked, tuple(parents))
        if isinstance(node, dict) and last in node:
            node[last] = SECRET_MASK
    return masked


def _under(secrets: frozenset[str], path: str) -> frozenset[str]:
    """The secret paths inside ``path``, relative to it."""
    if not secrets or not path:
        return secrets
    prefix = path + "."
    found = {s[len(prefix) :] for s in secrets if s.startswith(prefix)}
    if path in secrets:
        found.add("")
    return frozenset(found) if found else _NO_SECRETS


class _LocalWatch(SlotWatcher):
    def __init__(self, owner: ConfigCopy, path: str, secret: bool) -> None:
        super().__init__(owner._prime, owner._release)
        self.path = path
        self.secret = secret


class ConfigCopy:
    """One namespace's tree held in this process, served by a sync :meth:`get`.

    ``await load()`` once (a :class:`micro.Service` does it on start); from then on
    :meth:`get` answers from memory and the copy follows changes in the background.
    """

    def __init__(
        self,
        config: Config,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        retry: float = 0.2,
        max_retry: float = 10.0,
    ) -> None:
        self.config = config
        self.namespace = namespace
        self._retry = retry
        self._max_retry = max_retry
        self._state: _State | None = None
        self._secret_error: errors.MicroError | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._watchers: set[_LocalWatch] = set()
        self._closed = False

    @property
    def loaded(self) -> bool:
        """True once the tree has arrived."""
        return self._state is not None

    @property
    def revision(self) -> int:
        """The revision of the tree held (0 before loading)."""
        return 0 if self._state is None else self._state.revision

    # -- reading --------------------------------------------------------------------------

    def get(self, path: str = "", *, secret: bool = False) -> Value:
        """The value at ``path`` from the copy; no I/O. Same answers as
        :meth:`Config.get <micro.config.base.Config.get>`.

        Raises ServiceUnavailable before the copy is loaded, BadRequest for a malformed
        path, and SecretError for ``secret=True`` on secrets the server cannot decrypt.
        """
        state = self._state
        if state is None:
            raise errors.ServiceUnavailable(
                "config",
                f"the config of namespace {self.namespace!r} is not loaded yet: "
                "await micro.config.load() first",
            )
        parts = _parts(path)
        if state.secrets:
            secrets = state.under.get(path)
            if secrets is None:
                secrets = _under(state.secrets, path)
                if len(state.under) < _UNDER_CACHE:
                    state.under[path] = secrets
        else:
            secrets = _NO_SECRETS
        if secret and secrets and not state.revealed:
            detail = self._secret_error.detail if self._secret_error else "cannot reveal secrets"
            raise SecretError(detail)
        node = _walk(state.plain if secret else state.masked, parts)
        if not parts and not node:
            node = None  # an empty namespace holds nothing, as Config.get says
        return Value(path=path, data=_copy(node), secrets=secrets, revision=state.revision)

    # -- writing --------------------------------------------------------------------------

    async def set(self, path: str, value: Any, *, secret: bool = False) -> None:
        """Write through the config service; the copy shows the write once this returns."""
        await self.config.set(path, value, secret=secret, namespace=self.namespace)
        await self._refresh()

    async def delete(self, path: str) -> None:
        """Delete through the config service; the copy shows it once this returns."""
        await self.config.delete(path, namespace=self.namespace)
        await self._refresh()

    async def _refresh(self) -> None:
        state = self._state
        if state is None:
            return
        try:
            value = await self.config.get("", secret=state.revealed, namespace=self.namespace)
        except errors.MicroError as exc:
            log.debug("config refresh of namespace %s failed: %s", self.namespace, exc)
            return
        self._apply(value, revealed=state.revealed, snapshot=False)

    # -- watching -------------------------------------------------------------------------

    def watch(self, path: str = "", *, secret: bool = False) -> Watcher:
        """The value at ``path`` in the copy now, then each time the copy's value there
        changes (see :class:`~micro.config.base.Watcher`). Waits for loading if needed."""
        _parts(path)
        return _LocalWatch(self, path, secret)

    async def _prime(self, watcher: SlotWatcher) -> None:
        assert isinstance(watcher, _LocalWatch)
        await self.load()
        self._offer(watcher)
        self._watchers.add(watcher)

    def _release(self, watcher: SlotWatcher) -> None:
        assert isinstance(watcher, _LocalWatch)
        self._watchers.discard(watcher)

    def _offer(self, watcher: _LocalWatch) -> None:
        try:
            value = self.get(watcher.path, secret=watcher.secret)
        except errors.MicroError as exc:
            watcher.offer(exc)
            return
        seen = (value.data, value.secrets)
        if seen != watcher.last:
            watcher.last = seen
            watcher.offer(value)

    # -- following ------------------------------------------------------------------------

    async def load(self) -> None:
        """Fetch the tree and start following it; returns at once if loaded.

        Raises the error of a failed attempt (the copy keeps trying in the background).
        """
        if self._state is not None:
            return
        if self._closed:
            raise RuntimeError("this config copy is closed")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._follow())
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def _follow(self) -> None:
        delay = self._retry
        reveal = True
        while True:
            try:
                async with self.config.watch(
                    "", secret=reveal, namespace=self.namespace
                ) as watcher:
                    snapshot = True
                    async for value in watcher:
                        self._apply(value, revealed=reveal, snapshot=snapshot)
                        snapshot = False
                        delay = self._retry
                problem = "the config stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if reveal and isinstance(exc, errors.MicroError) and SecretError.matches(exc):
                    self._secret_error = exc
                    reveal = False
                    log.warning(
                        "config secrets of namespace %s cannot be revealed (%s); "
                        "following the masked config",
                        self.namespace,
                        exc.detail,
                    )
                    continue
                self._resolve(exc)
                problem = str(exc)
            log.log(
                logging.WARNING if self._state is not None else logging.DEBUG,
                "config of namespace %s: %s; following again in %.1fs",
                self.namespace,
                problem,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry)
            reveal = True

    def _apply(self, value: Value, *, revealed: bool, snapshot: bool) -> None:
        current = self._state
        if not snapshot and current is not None and value.revision <= current.revision:
            return
        tree = value.data if isinstance(value.data, dict) else {}
        secrets = value.secrets
        masked = _mask(tree, secrets) if revealed and secrets else tree
        self._state = _State(tree, masked, secrets, value.revision, revealed, {})
        if revealed:
            self._secret_error = None
        self._resolve(None)
        for watcher in list(self._watchers):
            self._offer(watcher)

    def _resolve(self, error: BaseException | None) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    # -- closing --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop following and end local watchers, without waiting."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        for watcher in list(self._watchers):
            watcher.end()
        self._resolve(RuntimeError("this config copy is closed"))

    async def close(self) -> None:
        """Stop following, wait for the follower to end, end local watchers."""
        task = self._task
        self.shutdown()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
