"""Micro's errors: the wire JSON, the typed re-raise by code, and pickling."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable

import pytest

from micro import errors

Make = Callable[[str, str], errors.MicroError]

TYPED: list[tuple[int, type[errors.MicroError], Make]] = [
    (400, errors.BadRequest, errors.bad_request),
    (401, errors.Unauthorized, errors.unauthorized),
    (403, errors.Forbidden, errors.forbidden),
    (404, errors.NotFound, errors.not_found),
    (405, errors.MethodNotAllowed, errors.method_not_allowed),
    (408, errors.Timeout, errors.timeout),
    (409, errors.Conflict, errors.conflict),
    (413, errors.PayloadTooLarge, errors.payload_too_large),
    (500, errors.InternalServerError, errors.internal_server_error),
    (501, errors.NotImplemented, errors.not_implemented),
    (502, errors.BadGateway, errors.bad_gateway),
    (503, errors.ServiceUnavailable, errors.service_unavailable),
    (504, errors.GatewayTimeout, errors.gateway_timeout),
]


@pytest.mark.parametrize(("code", "cls", "make"), TYPED)
def test_typed_error_round_trips_through_the_wire(code: int, cls: type, make: Make) -> None:
    sent = make("users.Read", f"detail for {code}")
    assert type(sent) is cls
    assert sent.code == code
    wire = json.loads(sent.to_json())
    assert wire == {
        "id": "users.Read",
        "code": code,
        "detail": f"detail for {code}",
        "status": sent.status,
    }
    assert wire["status"]  # every typed code has a reason phrase
    got = errors.from_json(sent.to_json())
    assert type(got) is cls
    assert (got.id, got.code, got.detail) == ("users.Read", code, f"detail for {code}")
    assert got.to_dict() == wire


@pytest.mark.parametrize(("code", "cls", "make"), TYPED)
def test_new_picks_the_class_for_the_code(code: int, cls: type, make: Make) -> None:
    err = errors.new("x", "y", code)
    assert type(err) is cls
    assert isinstance(err, errors.MicroError)
    with pytest.raises(cls):
        raise err


@pytest.mark.parametrize(("code", "status"), [(418, "I'm a Teapot"), (499, ""), (599, "")])
def test_unknown_code_keeps_its_number(code: int, status: str) -> None:
    err = errors.from_json(errors.new("svc", "odd", code).to_json())
    assert type(err) is errors.MicroError
    assert err.code == code
    assert err.status == status
    assert json.loads(err.to_json())["code"] == code


def test_message_is_the_detail_or_the_status() -> None:
    assert str(errors.NotFound("x", "no such user")) == "no such user"
    assert str(errors.NotFound("x")) == "Not Found"


def test_connection_error_is_a_retryable_503() -> None:
    err = errors.ConnectionError("micro.wire", "refused")
    assert isinstance(err, errors.ServiceUnavailable)
    assert err.code == 503
    # Across the wire it is only a 503: the remote side's connection failure is not ours to retry.
    assert type(errors.from_json(err.to_json())) is errors.ServiceUnavailable


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'"a string"',
        b'{"code": "four hundred"}',
        b'{"id": 5}',
        "plain text",
    ],
)
def test_from_json_on_garbage_is_a_500_carrying_the_text(garbage: bytes | str) -> None:
    err = errors.from_json(garbage)
    assert type(err) is errors.InternalServerError
    assert err.code == 500
    text = garbage.decode("utf-8", "replace") if isinstance(garbage, bytes) else garbage
    assert err.detail == text


def test_from_json_fills_missing_fields() -> None:
    assert type(errors.from_json(b"{}")) is errors.InternalServerError
    err = errors.from_json(b'{"code": 404}')
    assert type(err) is errors.NotFound
    assert (err.id, err.detail) == ("", "")
    # A zero code is no code: treat it as the default 500.
    assert errors.from_json(b'{"code": 0, "detail": "d"}').code == 500


@pytest.mark.parametrize(
    "err",
    [
        *(make("svc.E", "pickled") for _, _, make in TYPED),
        errors.new("svc", "teapot", 418),
        errors.ConnectionError("micro.wire", "refused"),
        errors.MicroError(),
    ],
    ids=lambda e: f"{type(e).__name__}-{e.code}",
)
def test_errors_pickle(err: errors.MicroError) -> None:
    got = pickle.loads(pickle.dumps(err))
    assert type(got) is type(err)
    assert (got.id, got.code, got.detail, str(got)) == (err.id, err.code, err.detail, str(err))


def test_equality_is_by_code_and_agrees_with_hash() -> None:
    a = errors.NotFound("a", "one")
    b = errors.NotFound("b", "two")
    c = errors.new("c", "three", 404)
    assert a == b == c
    assert a != errors.Conflict("a", "one")
    assert a != "NotFound"
    # Objects that compare equal must hash equal, or sets and dicts of errors misbehave.
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1


def test_repr_names_the_class_and_fields() -> None:
    assert repr(errors.Timeout("svc", "slow")) == "Timeout(id='svc', code=408, detail='slow')"
