"""The router: which node a call goes to, and how often it is tried.

One per process (the server's proxy and edges share the server's; a service's client has
its own), on the process's one :class:`~micro.routing.table.RouteTable`. For each call:

1. the route of (namespace, service), from the table (stale when the registry is away);
2. the service's breaker: open, the call fails fast with :class:`CircuitOpen` (503);
3. the next node round robin, skipping nodes whose breaker is open (a node that refused a
   connection is ejected at once) and nodes this call already tried;
4. the attempt. A connection refused before sending is tried on the next node at once.
   A call whose request was sent is retried only when its endpoint is idempotent and the
   error says the callee failed (lost connection, 502/503/504), with exponential backoff
   and jitter, within the policy's ``retries`` and the service's retry budget.

The policy of each call comes from :class:`~micro.routing.policy.Policies` (config).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from micro import errors
from micro._bounded import BoundedDict
from micro.routing.breaker import Breaker, CircuitOpen, counts
from micro.routing.budget import RetryBudget
from micro.routing.policy import Policies, Policy
from micro.routing.table import Route, RouteTable, key_of
from micro.wire import frames
from micro.wire.connection import Connection
from micro.wire.pool import Pool
from micro.wire.stream import Stream

__all__ = ["Plan", "Router"]

_RETRIED: Final = frozenset({502, 503, 504})
"""Answers after which an idempotent call is made again (the callee failed, not the call)."""

_MAX_BREAKERS: Final = 4096
"""Node breakers kept before those not open are forgotten."""

Key = tuple[str, str]

_PLANS_BYTES: Final = 4 * 1024 * 1024
"""What the plans may take (keyed by what callers name: endpoints of known services)."""


class Plan:
    """What a call to one endpoint needs of the router, worked out once per route and
    policy version rather than per call: the route, its key, the endpoint's policy, the
    service's retry budget, and whether the endpoint is idempotent."""

    __slots__ = ("budget", "idempotent", "key", "policy", "route", "version")

    def __init__(
        self, route: Route, key: Key, policy: Policy, budget: RetryBudget, version: int
    ) -> None:
        self.route = route
        self.key = key
        self.policy = policy
        self.budget = budget
        self.version = version
        self.idempotent = False


class Router:
    """Routes calls by service name over the table; see the module docstring."""

    def __init__(
        self,
        table: RouteTable,
        *,
        policies: Policies | None = None,
        pool: Pool | None = None,
        is_self: Callable[[str], bool] | None = None,
        who: str = "micro.client",
    ) -> None:
        self.table = table
        self.who = who
        """The id of the errors this router raises itself (``micro.proxy`` in the server)."""
        self.policies = policies or Policies()
        self.pool = pool or Pool()
        self._is_self = is_self
        self._next: dict[Key, int] = {}
        self._nodes: dict[str, Breaker] = {}
        self._services: dict[Key, Breaker] = {}
        self._budgets: dict[Key, RetryBudget] = {}
        self._not_self: dict[str, tuple[Route, tuple[str, ...]]] = {}
        self._plans: BoundedDict[tuple[str, str, str], Plan] = BoundedDict(_PLANS_BYTES)

    def set_self(self, is_self: Callable[[str], bool]) -> None:
        """Never route to an address ``is_self`` names (the proxy's own: it would loop)."""
        self._is_self = is_self

    async def close(self) -> None:
        """Stop the table's watch and the policies' watches; close connections to nodes."""
        await self.table.stop()
        await self.policies.stop()
        await self.pool.close()

    # -- choosing -------------------------------------------------------------------------

    async def route(self, service: str, namespace: str, timeout_ms: float = 0.0) -> Route:
        """The route of a service (cached, stale while the registry is away; one the
        server's runtime is restarting waited for within ``timeout_ms``)."""
        cached = self.table.cached(service, namespace)
        return cached or await self.table.wait_lookup(service, namespace, timeout_ms, who=self.who)

    def plan(self, service: str, namespace: str, endpoint: str) -> Plan | None:
        """The plan of a call (no await: the hot path); ``None`` when the route is not
        cached (see :meth:`route`)."""
        route = self.table.cached(service, namespace)
        if route is None:
            return None
        found = self._plans.get((namespace, service, endpoint))
        if found is not None and found.route is route and found.version == self.policies.version:
            return found
        made = self._plan_of(route, namespace, endpoint)
        self._plans.set((namespace, service, endpoint), made)
        return made

    def _plan_of(self, route: Route, namespace: str, endpoint: str) -> Plan:
        key = key_of(route.service, namespace)
        policy = self.policies.get(key[0], route.service, endpoint)
        made = Plan(route, key, policy, self.budget(key, policy), self.policies.version)
        made.idempotent = route.idempotent(endpoint)
        return made

    def pick(self, route: Route, key: Key, policy: Policy, exclude: Iterable[str] = ()) -> str:
        """The next node for a call; CircuitOpen when the service's breaker, or every
        node's, is open; ServiceUnavailable when no node is left to try."""
        if not self._nodes and not self._services and not exclude:
            # No breaker anywhere (a breaker goes at its node's first success): round robin,
            # as below, without looking at breakers that are not there.
            if self._is_self is None:
                nodes = route.nodes
            else:  # (_callable(), its cache hit inlined)
                known = self._not_self.get(route.service)
                nodes = (
                    known[1] if known is not None and known[0] is route else self._callable(route)
                )
            if nodes:
                start = self._next.get(key, 0)
                self._next[key] = start + 1
                return nodes[start % len(nodes)]
        now = time.monotonic()
        service = self._services.get(key)
        if service is not None and not service.allows(now):
            raise CircuitOpen(
                route.service,
                f"service {route.service}",
                f"circuit breaker of service {route.service} is open after {service.failures} "
                f"failed calls in a row; next try in {service.retry_in(now):.1f} s",
            )
        nodes = route.nodes
        if self._is_self is not None:
            nodes = self._callable(route)
            if route.nodes and not nodes:
                raise errors.ServiceUnavailable(
                    route.service,
                    f"service {route.service} is registered at the proxy's own address",
                )
        count = len(nodes)
        if not count:
            raise errors.ServiceUnavailable(route.service, f"service {route.service} has no nodes")
        skip = exclude if isinstance(exclude, set | frozenset) else set(exclude)
        start = self._next.get(key, 0)
        opened: Breaker | None = None
        for i in range(count):
            address = nodes[(start + i) % count]
            if address in skip:
                continue
            breaker = self._nodes.get(address)
            if breaker is not None and not breaker.allows(now):
                opened = breaker
                continue
            self._next[key] = start + i + 1
            if breaker is not None:
                breaker.taken(now, policy.breaker_open_for)
            if service is not None:
                service.taken(now, policy.breaker_open_for)
            return address
        if opened is not None:
            wait = min(self._nodes[n].retry_in(now) for n in nodes if n in self._nodes)
            raise CircuitOpen(
                route.service,
                f"nodes of {route.service}",
                f"circuit breakers of every node of service {route.service} are open; next "
                f"try in {wait:.1f} s",
            )
        raise errors.ServiceUnavailable(
            route.service, f"no reachable node of service {route.service}"
        )

    def _callable(self, route: Route) -> tuple[str, ...]:
        """The route's nodes but this process's own listener, worked out once per route."""
        known = self._not_self.get(route.service)
        if known is not None and known[0] is route:
            return known[1]
        assert self._is_self is not None
        nodes = tuple(n for n in route.nodes if not self._is_self(n))
        self._not_self[route.service] = (route, nodes)
        return nodes

    # -- outcomes -------------------------------------------------------------------------

    def succeeded(self, key: Key, address: str) -> None:
        """A call to ``address`` worked: its breakers close (a closed breaker with no
        failures is no breaker at all: nodes come and go, their entries must not stay)."""
        if address in self._nodes:
            del self._nodes[address]
        if key in self._services:
            del self._services[key]

    def failed(
        self, key: Key, address: str, exc: errors.MicroError, policy: Policy, *, sent: bool
    ) -> None:
        """A call to ``address`` failed with ``exc``: count it on its breakers (a
        connection refused ejects the node at once)."""
        if sent and not counts(exc):
            self.succeeded(key, address)  # the callee answered: it is up
            return
        now = time.monotonic()
        node = self._nodes.get(address)
        if node is None:
            if len(self._nodes) >= _MAX_BREAKERS:
                self._prune(now)
            node = self._nodes[address] = Breaker()
        node.failed(now, policy.breaker_failures, policy.breaker_open_for, at_once=not sent)
        if isinstance(exc, errors.ConnectionError):
            # One node's trouble (its process died, its connection dropped every call on it
            # at once): its own breaker's business. The service's counts failed answers.
            return
        service = self._services.get(key)
        if service is None:
            service = self._services[key] = Breaker()
        service.failed(now, policy.breaker_failures, policy.breaker_open_for)

    def _prune(self, now: float) -> None:
        """Forget the breakers of nodes not open now (gone nodes never report success)."""
        for address in [a for a, b in self._nodes.items() if b.allows(now)]:
            del self._nodes[address]

    def budget(self, key: Key, policy: Policy) -> RetryBudget:
        """The retry budget of calls to a service."""
        budget = self._budgets.get(key)
        if budget is None or (budget.ratio, budget.floor) != (
            policy.budget_ratio,
            policy.budget_floor,
        ):
            budget = self._budgets[key] = RetryBudget(policy.budget_ratio, policy.budget_floor)
        return budget

    # -- calling --------------------------------------------------------------------------

    async def unary(
        self,
        header: frames.RequestHeader,
        body: bytes,
        *,
        namespace: str,
        first: str = "",
    ) -> bytes:
        """Make a unary call on a node of ``header.service`` by the policy of its endpoint
        (``header.timeout`` is capped by it); the response body or the last error.
        ``first``: the node already picked for the first attempt, if any."""
        service, endpoint = header.service, header.endpoint
        plan = self.plan(service, namespace, endpoint) or self._plan_of(
            await self.route(service, namespace, header.timeout), namespace, endpoint
        )
        route, key, policy, budget = plan.route, plan.key, plan.policy, plan.budget
        asked = header.timeout / 1000 if header.timeout > 0 else None
        left = policy.deadline(asked)
        if left != asked and left is not None:
            header = msgspec.structs.replace(header, timeout=left * 1000)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + left if left is not None else None
        budget.deposit()
        idempotent = plan.idempotent
        tried: list[str] = []
        retries = 0
        last: errors.MicroError | None = None
        while True:
            try:
                address = first or self.pick(route, key, policy, tried)
                first = ""
            except CircuitOpen:
                if last is not None:  # opened by this call's own failures: say what they were
                    raise last from None
                raise
            sent = False
            try:
                conn = self.pool.get_nowait(address) or await self.pool.get(address)
                sent = True
                wait = None if deadline is None else deadline - loop.time()
                if wait is not None and retries:
                    if wait <= 0:
                        raise errors.Timeout(service, f"call to {service} {endpoint} timed out")
                    header = msgspec.structs.replace(header, timeout=wait * 1000)
                data: bytes = await conn.unary(header, body, wait)
            except errors.MicroError as exc:
                self.failed(key, address, exc, policy, sent=sent)
                last = exc
                if retries >= policy.retries:
                    raise
                if sent:
                    if not (idempotent and _retried(exc)) or not budget.withdraw():
                        raise
                    retries += 1
                    pause = policy.wait(retries)
                    if deadline is not None and loop.time() + pause >= deadline:
                        raise
                    await asyncio.sleep(pause)
                else:
                    retries += 1
                tried.append(address)
                if len(tried) >= len(route.nodes):
                    tried.clear()  # every node tried once: the next round may find one back
                route = self.table.cached(service, namespace) or route
                continue
            self.succeeded(key, address)
            return data

    async def connect(
        self, service: str, namespace: str, endpoint: str, timeout_ms: float = 0.0
    ) -> Connection:
        """A connection to a node of ``service`` for a stream (only a refused connection is
        tried again, on the next node: a stream is never replayed)."""
        plan = self.plan(service, namespace, endpoint) or self._plan_of(
            await self.route(service, namespace, timeout_ms), namespace, endpoint
        )
        route, key, policy = plan.route, plan.key, plan.policy
        tried: list[str] = []
        while True:
            address = self.pick(route, key, policy, tried)
            conn = self.pool.get_nowait(address)
            if conn is not None:
                return conn
            try:
                conn = await self.pool.get(address)
            except errors.ConnectionError as exc:
                self.failed(key, address, exc, policy, sent=False)
                tried.append(address)
                if len(tried) > policy.retries:
                    raise
                continue
            return conn

    async def open_stream(
        self, header: frames.RequestHeader, first: bytes | None, *, namespace: str
    ) -> Stream:
        """Open a streaming call on a node of ``header.service``."""
        conn = await self.connect(header.service, namespace, header.endpoint, header.timeout)
        return conn.open_stream(header, first)


def _retried(exc: errors.MicroError) -> bool:
    return isinstance(exc, errors.ConnectionError) or exc.code in _RETRIED
