"""Resilience policies, declared per service and endpoint in config, hot-reloaded.

The tree under ``resilience`` in a namespace's config (``micro config set``)::

    resilience:
      <service>:                   # what applies to every call to the service
        timeout: 2s                # at most this long per call (a caller may ask less)
        retries: 2                 # retries after a failed attempt (see "idempotent")
        backoff: 50ms              # first retry's wait, doubled each retry, with full jitter
        backoff_max: 1s            # the longest wait between attempts
        breaker:
          failures: 5              # failures in a row that open a breaker
          open_for: 10s            # how long it stays open before a probe call
        budget:
          ratio: 0.1               # retries may add this share of calls
          floor: 10                # retries always allowed per ``window`` (10 s)
        <Handler>:
          <Method>:                # one endpoint: timeout, retries, backoff, backoff_max
            retries: 5

e.g. ``micro config set resilience.orders.Orders.Get.retries 3``. Durations take Go's
form (``250ms``, ``2s``) or a number of seconds. A value of the wrong shape is ignored
(and logged), never fatal: a typo in config must not stop calls.

Which calls are retried is not config's choice but the service's: a call whose request
was sent is retried only when its endpoint is idempotent (``@micro.idempotent``,
published in the registry); a connection refused before sending is always retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from micro.config.base import Watcher
from micro.durations import go_duration

__all__ = ["DEFAULT", "ROOT", "Policies", "Policy", "parse"]

log = logging.getLogger("micro.routing")

ROOT: Final = "resilience"
"""The config path policies live under, in each namespace."""

_MAX_NAMESPACES: Final = 256
"""Namespaces whose policies are followed at once (each with one config watch)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How calls to one endpoint are made."""

    timeout: float = 0.0
    """Seconds a call may take at most; 0: as long as the caller allows."""
    retries: int = 2
    backoff: float = 0.05
    backoff_max: float = 1.0
    breaker_failures: int = 5
    breaker_open_for: float = 10.0
    budget_ratio: float = 0.1
    budget_floor: float = 10.0

    def wait(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1, 2, ...): exponential, full jitter."""
        ceiling = min(self.backoff_max, self.backoff * (2 ** (retry - 1)))
        return random.uniform(0.0, ceiling)  # jitter, not a secret

    def deadline(self, asked: float | None) -> float | None:
        """The seconds a call gets: what the caller asked, at most the policy's timeout."""
        if self.timeout <= 0:
            return asked
        return self.timeout if asked is None or asked <= 0 else min(asked, self.timeout)


DEFAULT: Final = Policy()

_ENDPOINT_FIELDS: Final = ("timeout", "retries", "backoff", "backoff_max")
_DURATIONS: Final = frozenset({"timeout", "backoff", "backoff_max", "breaker_open_for"})
_NESTED: Final = {"breaker": ("failures", "open_for"), "budget": ("ratio", "floor")}
_KNOWN: Final = frozenset(f.name for f in fields(Policy))


def _number(name: str, raw: Any) -> float | int | None:
    if isinstance(raw, bool):
        return None
    if name in _DURATIONS:
        seconds = go_duration(raw) if isinstance(raw, str) else raw
        return float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else None
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            raw = float(raw)
    if not isinstance(raw, int | float) or raw < 0:
        return None
    return int(raw) if name in ("retries", "breaker_failures") else float(raw)


def _apply(policy: Policy, tree: Any, names: tuple[str, ...], where: str) -> Policy:
    if not isinstance(tree, dict):
        return policy
    changes: dict[str, Any] = {}
    for key, raw in tree.items():
        if key in _NESTED and isinstance(raw, dict):
            pairs = [(f"{key}_{sub}", raw[sub]) for sub in _NESTED[key] if sub in raw]
        elif key in names:
            pairs = [(key, raw)]
        else:
            continue
        for name, value in pairs:
            if name not in _KNOWN:
                continue
            number = _number(name, value)
            if number is None:
                log.warning("config %s.%s: %r is not a valid value; ignored", where, name, value)
            else:
                changes[name] = number
    return replace(policy, **changes) if changes else policy


def parse(tree: Any, service: str, endpoint: str) -> Policy:
    """The policy of ``service``'s ``endpoint`` in a ``resilience`` tree: the service's
    settings, then the endpoint's over them."""
    node: Any = tree
    for part in service.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return DEFAULT
    where = f"{ROOT}.{service}"
    policy = _apply(DEFAULT, node, tuple(_KNOWN), where)
    handler, _, method = endpoint.partition(".")
    ep = node.get(handler)
    ep = ep.get(method) if isinstance(ep, dict) else None
    if isinstance(ep, dict):
        policy = _apply(policy, ep, _ENDPOINT_FIELDS, f"{where}.{endpoint}")
    return policy


WatchSource = Callable[[str], Watcher]
"""A namespace -> a config watcher of its ``resilience`` tree."""


class Policies:
    """The policies of every namespace this process calls in, each kept fresh by a
    config watch started on first use (defaults until it has answered)."""

    def __init__(self, source: WatchSource | None = None) -> None:
        self._source = source
        self._trees: OrderedDict[str, Any] = OrderedDict()
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._parsed: dict[tuple[str, str, str], Policy] = {}
        self.version = 0
        """Bumped whenever any namespace's policies change."""

    def get(self, namespace: str, service: str, endpoint: str) -> Policy:
        """The policy for a call (no await: the hot path)."""
        key = (namespace, service, endpoint)
        policy = self._parsed.get(key)
        if policy is not None:
            return policy
        if namespace not in self._trees:
            self._follow(namespace)
        policy = parse(self._trees.get(namespace), service, endpoint)
        if len(self._parsed) > 4096:
            self._parsed.clear()
        self._parsed[key] = policy
        return policy

    def set_tree(self, namespace: str, tree: Any) -> None:
        """What the ``resilience`` tree of ``namespace`` now is (the watch calls this)."""
        self._trees[namespace] = tree
        self._trees.move_to_end(namespace)
        self._parsed.clear()
        self.version += 1

    def _follow(self, namespace: str) -> None:
        self._trees[namespace] = None
        if self._source is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: defaults only
            loop = asyncio.get_running_loop()
            self._watches[namespace] = loop.create_task(self._watch(namespace))
        while len(self._trees) > _MAX_NAMESPACES:
            oldest, _ = self._trees.popitem(last=False)
            task = self._watches.pop(oldest, None)
            if task is not None:
                task.cancel()

    async def _watch(self, namespace: str) -> None:
        assert self._source is not None
        while True:
            try:
                async with self._source(namespace) as watcher:
                    async for value in watcher:
                        self.set_tree(namespace, value.data if value.exists else None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # config away: keep the policies known, try again
                log.debug("routing: policies of %s not followed: %s", namespace, exc)
            await asyncio.sleep(2.0)

    async def stop(self) -> None:
        """Stop every watch."""
        tasks = list(self._watches.values())
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
