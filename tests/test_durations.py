"""Durations in (Go's syntax) and out (Micro's "4s ago")."""

from __future__ import annotations

import datetime

import pytest

from micro.durations import ago, go_duration, humanize, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("-1h", -3600.0),
        ("2.5", 2.5),
        ("1h1us", 3600.000001),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "1m-2s", "--1s"])
def test_not_go_durations(text: str) -> None:
    assert go_duration(text) is None


def test_parse_duration_wants_a_positive_one() -> None:
    assert parse_duration("10m") == 600.0
    for bad in ("", "0s", "-5s", "soon"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_humanize_and_ago() -> None:
    assert humanize(0) == "0s"
    assert humanize(93784) == "1d2h3m4s"
    started = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(seconds=65)
    assert ago(started.strftime("%Y-%m-%dT%H:%M:%SZ")) in ("1m5s ago", "1m6s ago")
    assert ago("not a time") == "n/a"
