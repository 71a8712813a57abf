"""Offsets as the events service reads them off a request."""

from __future__ import annotations

import datetime

import pytest

from micro import errors
from micro.events.handler import offset_of


def test_offsets() -> None:
    assert offset_of(5, 0) == 5
    assert offset_of(0, 0) is None
    assert offset_of(0, 1.5) == datetime.datetime.fromtimestamp(1.5, tz=datetime.UTC)


@pytest.mark.parametrize(("sequence", "at"), [(-1, 0), (0, -1), (0, 2.5e16), (0, float("inf"))])
def test_bad_offsets_are_400s(sequence: int, at: float) -> None:
    # (a time far out of range was a 500, found by fuzzing the gateway)
    with pytest.raises(errors.BadRequest):
        offset_of(sequence, at)
