"""Value's typed getters: best-effort coercion as Micro's, defaults, strict scan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import msgspec
import pytest

from micro import errors
from micro.config import Value


def v(data: object) -> Value:
    return Value(path="p", data=data)


def test_missing_value_answers_defaults() -> None:
    missing = Value(path="p")
    assert not missing.exists
    assert missing.string("Hello") == "Hello"
    assert missing.int(3) == 3
    assert missing.float(1.5) == 1.5
    assert missing.bool(True) is True
    assert missing.duration(timedelta(seconds=9)) == timedelta(seconds=9)
    assert missing.list(["a"]) == ["a"]
    assert missing.map({"k": "v"}) == {"k": "v"}
    assert missing.list() == []
    assert missing.map() == {}
    assert missing.bytes() == b"null"


def test_string() -> None:
    assert v("x").string() == "x"
    assert v(42).string() == "42"
    assert v(2.5).string() == "2.5"
    assert v(True).string() == "true"
    assert v({"a": 1}).string("d") == "d"
    assert v([1]).string("d") == "d"


@pytest.mark.parametrize(
    ("data", "expected"),
    [(42, 42), ("42", 42), (" 7 ", 7), (2.9, 2), (-2.9, -2), ("3.0", 3), ("1e3", 1000)],
)
def test_int_coerces(data: object, expected: int) -> None:
    assert v(data).int() == expected


@pytest.mark.parametrize("data", ["forty", True, None, [1], {"a": 1}, "nan", float("inf")])
def test_int_falls_back(data: object) -> None:
    assert v(data).int(-1) == -1


def test_float() -> None:
    assert v(2).float() == 2.0
    assert v("2.25").float() == 2.25
    assert v(False).float(9.0) == 9.0
    assert v("x").float(9.0) == 9.0


@pytest.mark.parametrize(
    ("data", "expected"),
    [(True, True), (False, False), ("true", True), ("1", True), ("F", False), ("FALSE", False)],
)
def test_bool_coerces(data: object, expected: bool) -> None:
    assert v(data).bool(not expected) is expected


def test_bool_numbers_and_fallback() -> None:
    assert v(1).bool() is True
    assert v(0).bool(True) is False
    assert v("yes").bool(True) is True
    assert v("yes").bool(False) is False
    assert v([True]).bool(True) is True


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("1m30s", timedelta(seconds=90)),
        ("300ms", timedelta(milliseconds=300)),
        ("1.5h", timedelta(minutes=90)),
        ("-2s", timedelta(seconds=-2)),
        ("1h2m3s4ms", timedelta(hours=1, minutes=2, seconds=3, milliseconds=4)),
        ("10us", timedelta(microseconds=10)),
        ("0", timedelta(0)),
        (90, timedelta(seconds=90)),
        (0.5, timedelta(milliseconds=500)),
        ("2.5", timedelta(seconds=2.5)),
    ],
)
def test_duration_parses_go_strings_and_seconds(data: object, expected: timedelta) -> None:
    assert v(data).duration() == expected


@pytest.mark.parametrize("data", ["", "1x", "m", "1m30", True, [1], {"s": 1}, "-"])
def test_duration_falls_back(data: object) -> None:
    assert v(data).duration(timedelta(seconds=5)) == timedelta(seconds=5)


def test_list_is_micros_string_slice() -> None:
    assert v(["a", 1, True, {"x": 1}]).list() == ["a", "1", "true", '{"x":1}']
    assert v("a, b,c").list() == ["a", "b", "c"]
    assert v("one").list() == ["one"]
    assert v(5).list(["d"]) == ["d"]
    assert v("").list(["d"]) == ["d"]


def test_map_is_micros_string_map() -> None:
    assert v({"a": "x", "n": 1, "o": {"p": [1]}}).map() == {"a": "x", "n": "1", "o": '{"p":[1]}'}
    assert v(["a"]).map({"d": "1"}) == {"d": "1"}


class Db(msgspec.Struct):
    host: str
    port: int = 5432


@dataclass
class Limits:
    soft: int
    hard: int


def test_scan_into_typed_classes() -> None:
    assert v({"host": "h"}).scan(Db) == Db("h", 5432)
    assert v({"soft": 1, "hard": 2}).scan(Limits) == Limits(1, 2)
    assert v([1, 2]).scan(list[int]) == [1, 2]


def test_scan_is_strict_and_clear() -> None:
    with pytest.raises(errors.BadRequest, match=r"config value at 'p' is not a Db"):
        v({"host": 1}).scan(Db)
    with pytest.raises(errors.BadRequest):
        v("42").scan(int)
    with pytest.raises(errors.NotFound, match="no config value at 'p'"):
        Value(path="p").scan(Db)
    assert Value(path="p").scan(Db, None) is None


def test_bytes_is_compact_json_without_html_escaping() -> None:
    assert v({"a": "<b>&"}).bytes() == b'{"a":"<b>&"}'


def test_a_wrongly_typed_value_warns_naming_its_path_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = Value(path="db.port", data="five thousand", revision=3)
    with caplog.at_level("WARNING", logger="micro.config"):
        assert value.int(5432) == 5432
        assert value.int(5432) == 5432  # read on every request: one warning per value
        assert value.bool(True) is True
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "config value at 'db.port' is not an int (it is the string 'five thousand'): using the default",
        "config value at 'db.port' is not a bool (it is the string 'five thousand'): using the default",
    ]


def test_a_missing_value_or_one_that_fits_warns_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="micro.config"):
        assert Value(path="db.port").int(5432) == 5432
        assert Value(path="db.port", data="5433").int(5432) == 5433
    assert caplog.records == []
