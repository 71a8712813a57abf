"""Metrics: each service of the namespace with its request rate, errors and p50/p99.

Server-rendered like every page: for each service the registry lists (the platform's own
are left out: their metrics are the server's, on the gateway's ``/metrics``), one
``Debug.Metrics`` call as the logged-in account, so the namespace's rules decide as for
any call, and a tenant sees its own services only. A service answers for the node the
call reached. The rate is requests per second since the last time this page sampled that
node (since the node started, on a first look); samples are kept in a bounded cache.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

from starlette.responses import Response
from starlette.routing import Route

from micro import errors
from micro._bounded import BoundedDict
from micro.rpc.client import CORE_SERVICES
from micro.web.app import Context, page

__all__ = ["ROUTES"]

_MAX_SERVICES: Final = 100
"""Services sampled per page view; past that the page says how many it left out."""
_TIMEOUT: Final = 3.0
_SAMPLES_BYTES: Final = 1024 * 1024

_samples: BoundedDict[tuple[str, str, float], tuple[float, int]] = BoundedDict(_SAMPLES_BYTES)
"""(namespace, service, node start) -> (when sampled, requests then)."""


@dataclass(frozen=True, slots=True)
class _Row:
    service: str
    rate: float | None = None
    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    endpoints: tuple[dict[str, Any], ...] = ()
    problem: str = ""


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def rate(key: tuple[str, str, float], now: float, started: float, requests: int) -> float:
    """Requests per second since the last sample of this node (or since it started)."""
    previous = _samples.get(key)
    _samples.set(key, (now, requests))
    if previous is not None and now > previous[0] and requests >= previous[1]:
        return (requests - previous[1]) / (now - previous[0])
    return requests / max(now - started, 1.0)


async def _sample(context: Context, name: str) -> _Row:
    try:
        async with asyncio.timeout(_TIMEOUT):
            answer = await context.caller.call(name, "Debug.Metrics", {})
    except TimeoutError:
        return _Row(name, problem="no answer in time")
    except errors.MicroError as exc:
        return _Row(name, problem=f"{exc.status}: {exc.detail}")
    answer = answer or {}
    totals = [s for s in answer.get("services") or [] if s.get("service") == name]
    if not totals:
        return _Row(name, rate=0.0)
    total = totals[0]
    key = (context.session.namespace, name, float(answer.get("started") or 0.0))
    requests = int(total.get("requests") or 0)
    return _Row(
        name,
        rate=rate(key, float(answer.get("timestamp") or 0.0), key[2], requests),
        requests=requests,
        errors=int(total.get("errors") or 0),
        p50_ms=_ms(total.get("p50")),
        p99_ms=_ms(total.get("p99")),
        endpoints=tuple(
            {**e, "p50_ms": _ms(e.get("p50")), "p99_ms": _ms(e.get("p99"))}
            for e in answer.get("endpoints") or []
            if e.get("service") == name
        ),
    )


async def metrics(context: Context) -> Response:
    """``/metrics``: every service of the namespace, sampled now."""
    answer = await context.caller.call("registry", "Registry.ListServices", {})
    names = sorted(
        {str(s.get("name", "")) for s in (answer or {}).get("services") or []} - CORE_SERVICES
    )
    rows = await asyncio.gather(*(_sample(context, n) for n in names[:_MAX_SERVICES]))
    return context.render("metrics.html", rows=rows, left_out=max(len(names) - _MAX_SERVICES, 0))


ROUTES = [Route("/metrics", page(metrics))]
