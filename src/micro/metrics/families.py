"""Prometheus metric families, kept without a client library: counters, gauges and
latency histograms, rendered in the text exposition format.

Labels are bounded. A family keeps at most ``max_series`` label sets; past that, new ones
share :data:`OTHER` in every label. Callers of a family pass only values the code or the
registry chose (a service's endpoints, a consumer's topic), never raw input: what a caller
of an endpoint sends cannot grow memory or the time a scrape takes. (The gateway, which
sees arbitrary paths, maps unknown ones to :data:`UNKNOWN` before observing.)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

__all__ = [
    "BUCKETS",
    "OTHER",
    "UNKNOWN",
    "Counter",
    "Family",
    "Gauge",
    "Histogram",
    "Registry",
    "Series",
    "quantile",
]

BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of a latency histogram, in seconds."""

UNKNOWN: Final = "(unknown)"
"""The label value of what nobody registered (an unknown service or endpoint)."""
OTHER: Final = "(other)"
"""The label value of every label set past a family's series limit."""

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(int(value)) if float(value).is_integer() else repr(value)


class Family:
    """One metric name with its label names and bounded series."""

    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str], max_series: int) -> None:
        self.name = name
        self.help = help
        self.labels = tuple(labels)
        self.max_series = max_series

    def _key(self, values: Labels, series: Mapping[Labels, object]) -> Labels:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, not {values}")
        if values in series or len(series) < self.max_series:
            return values
        return (OTHER,) * len(self.labels)

    def _labels(self, values: Labels, extra: str = "") -> str:
        parts = [f'{k}="{_escape(v)}"' for k, v in zip(self.labels, values, strict=True)]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self, keep: Callable[[Labels], bool]) -> list[str]:
        """The family's lines, for the label sets ``keep`` accepts."""
        raise NotImplementedError


class Counter(Family):
    """A count that only grows (requests, events)."""

    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str], max_series: int) -> None:
        super().__init__(name, help, labels, max_series)
        self.values: dict[Labels, float] = {}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        key = self._key(labels, self.values)
        self.values[key] = self.values.get(key, 0.0) + by

    def key(self, *labels: str) -> Labels:
        """The series of ``labels`` (made at 0; :data:`OTHER` past the limit): a hot path
        adds to ``values[key]`` itself, with no bounding work per call."""
        key = self._key(labels, self.values)
        self.values.setdefault(key, 0.0)
        return key

    def render(self, keep: Callable[[Labels], bool]) -> list[str]:
        return [
            f"{self.name}{self._labels(k)} {_number(v)}"
            for k, v in sorted(self.values.items())
            if keep(k)
        ]


class Gauge(Counter):
    """A value that goes up and down (calls in flight, consumer lag)."""

    kind = "gauge"

    def set(self, *labels: str, value: float) -> None:
        key = self._key(labels, self.values)
        self.values[key] = value


class Series:
    """One histogram series: its bucket counts, their count and sum (hot paths hold on to
    one and :meth:`observe` into it)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.total += seconds


class Histogram(Family):
    """Durations in :data:`BUCKETS`, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labels: Sequence[str], max_series: int) -> None:
        super().__init__(name, help, labels, max_series)
        self.series: dict[Labels, Series] = {}

    def observe(self, *labels: str, seconds: float) -> None:
        self.series_of(*labels).observe(seconds)

    def series_of(self, *labels: str) -> Series:
        """The series of ``labels`` (:data:`OTHER`'s past the limit), to observe into."""
        key = self._key(labels, self.series)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series()
        return series

    def quantile(self, q: float, *labels: str) -> float | None:
        """The ``q`` quantile of one series, interpolated in its bucket as Prometheus's
        ``histogram_quantile`` does; ``None`` with no observation."""
        series = self.series.get(labels)
        return None if series is None else quantile(q, series.buckets)

    def merged(self, match: Callable[[Labels], bool]) -> list[int]:
        """The bucket counts of every series ``match`` accepts, added up."""
        total = [0] * (len(BUCKETS) + 1)
        for key, series in self.series.items():
            if match(key):
                total = [a + b for a, b in zip(total, series.buckets, strict=True)]
        return total

    def render(self, keep: Callable[[Labels], bool]) -> list[str]:
        lines: list[str] = []
        for key, s in sorted(self.series.items()):
            if not keep(key):
                continue
            running = 0
            for bound, count in zip((*BUCKETS, math.inf), s.buckets, strict=True):
                running += count
                le = self._labels(key, f'le="{_number(bound)}"')
                lines.append(f"{self.name}_bucket{le} {running}")
            lines.append(f"{self.name}_sum{self._labels(key)} {s.total!r}")
            lines.append(f"{self.name}_count{self._labels(key)} {s.count}")
        return lines


def quantile(q: float, buckets: Sequence[int]) -> float | None:
    """The ``q`` quantile of histogram ``buckets`` (counts per :data:`BUCKETS` bound, then
    +Inf), interpolated in its bucket as Prometheus's ``histogram_quantile`` does; ``None``
    with no observation."""
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    running, lower = 0, 0.0
    for bound, count in zip((*BUCKETS, math.inf), buckets, strict=True):
        if count and running + count >= rank:
            if bound == math.inf:
                return lower  # beyond the last bound: its lower edge, as Prometheus
            return lower + (bound - lower) * (rank - running) / count
        running += count
        lower = bound
    return lower


Collector = Callable[[], Awaitable[None]]
"""Brings gauges up to date just before a scrape (e.g. asks the stream for lag)."""


class Registry:
    """The families of one process (or one edge), rendered together."""

    def __init__(self, max_series: int = 2000) -> None:
        self.max_series = max_series
        self.families: dict[str, Family] = {}
        self.collectors: list[Collector] = []

    def _family(self, cls: type[Family], name: str, help: str, labels: Sequence[str]) -> Family:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = cls(name, help, labels, self.max_series)
        if type(family) is not cls or family.labels != tuple(labels):
            raise ValueError(f"metric {name} exists with another type or labels")
        return family

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        family = self._family(Counter, name, help, labels)
        assert isinstance(family, Counter)
        return family

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        family = self._family(Gauge, name, help, labels)
        assert isinstance(family, Gauge)
        return family

    def histogram(self, name: str, help: str, labels: Sequence[str] = ()) -> Histogram:
        family = self._family(Histogram, name, help, labels)
        assert isinstance(family, Histogram)
        return family

    async def collect(self) -> None:
        """Run the collectors (a failing one leaves its gauges as they were)."""
        for collector in list(self.collectors):
            try:
                await collector()
            except Exception:  # a scrape must not fail because a backend is away
                continue

    def render(self, keep: Callable[[str, Labels], bool] | None = None) -> bytes:
        """The text exposition format; ``keep(name, labels)`` filters series."""
        lines: list[str] = []
        for name, family in sorted(self.families.items()):
            lines += family.header()
            lines += family.render(_everything if keep is None else _only(keep, name))
        return ("\n".join(lines) + "\n").encode()


def _everything(labels: Labels) -> bool:
    return True


def _only(keep: Callable[[str, Labels], bool], name: str) -> Callable[[Labels], bool]:
    return lambda labels: keep(name, labels)
