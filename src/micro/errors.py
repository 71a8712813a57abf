"""Errors of Micro for Python, and the wire format they travel in.

Every error a caller can see derives from :class:`MicroError`. Errors that cross the
wire are Micro's JSON error ``{"id", "code", "detail", "status"}`` where ``code`` is an
HTTP status; the caller re-raises them as the typed subclass for that code, so a
handler's ``raise errors.not_found("users.Read", "no such user")`` arrives at the
caller as a :class:`NotFound` with the same id and detail.

The tree::

    MicroError                      (code 500 unless a subclass says otherwise)
    ├── BadRequest                  400  malformed input, validation failure
    ├── Unauthorized                401  no (valid) account
    ├── Forbidden                   403  an account that may not do this
    ├── NotFound                    404  unknown service, endpoint or key
    ├── MethodNotAllowed            405
    ├── Timeout                     408  the deadline passed
    ├── Conflict                    409  already exists
    ├── PayloadTooLarge             413
    ├── InternalServerError         500  a handler raised something that is not a MicroError
    ├── NotImplemented              501
    ├── BadGateway                  502
    ├── ServiceUnavailable          503  no node to reach, connection failed
    └── GatewayTimeout              504

:class:`ConnectionError` (a ServiceUnavailable) marks a call that never reached a
handler, which is the one case a client may retry on another node.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import msgspec

__all__ = [
    "BadGateway",
    "BadRequest",
    "Conflict",
    "ConnectionError",
    "Forbidden",
    "GatewayTimeout",
    "InternalServerError",
    "MethodNotAllowed",
    "MicroError",
    "NotFound",
    "NotImplemented",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "Timeout",
    "Unauthorized",
    "bad_gateway",
    "bad_request",
    "conflict",
    "forbidden",
    "from_json",
    "gateway_timeout",
    "internal_server_error",
    "method_not_allowed",
    "new",
    "not_found",
    "not_implemented",
    "payload_too_large",
    "service_unavailable",
    "timeout",
    "unauthorized",
]


class _WireError(msgspec.Struct, omit_defaults=False):
    """The JSON shape of an error on the wire and at the gateway (Micro v3.10+ keys)."""

    id: str = ""
    code: int = 500
    detail: str = ""
    status: str = ""


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_WireError).decode


class MicroError(Exception):
    """The root of every error Micro for Python raises; carries Micro's error fields."""

    code: ClassVar[int] = 500

    def __init__(self, id: str = "", detail: str = "", code: int | None = None) -> None:
        self.id = id
        self.detail = detail
        if code is not None and code != type(self).code:
            # A code without a subclass of its own (e.g. 418) keeps its number.
            self.code = code  # type: ignore[misc]
        super().__init__(detail or self.status)

    @property
    def status(self) -> str:
        """The HTTP reason phrase for the code, as Micro puts in ``status``."""
        try:
            return HTTPStatus(self.code).phrase
        except ValueError:
            return ""

    def to_dict(self) -> dict[str, Any]:
        """The error as Micro's JSON object."""
        return {"id": self.id, "code": self.code, "detail": self.detail, "status": self.status}

    def to_json(self) -> bytes:
        """The error as Micro's JSON bytes, as carried by error frames and HTTP bodies."""
        return _encode(_WireError(self.id, self.code, self.detail, self.status))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, code={self.code}, detail={self.detail!r})"

    def __eq__(self, other: object) -> bool:
        # Like Micro's errors.Equal: two errors are alike when their codes are.
        return isinstance(other, MicroError) and other.code == self.code

    def __hash__(self) -> int:
        # Equal errors must hash alike, and equality is by code alone.
        return hash(self.code)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.id, self.detail, self.code))


class BadRequest(MicroError):
    """400: the request was malformed or failed validation."""

    code = 400


class Unauthorized(MicroError):
    """401: the call carries no account, or an invalid one."""

    code = 401


class Forbidden(MicroError):
    """403: the account may not do this."""

    code = 403


class NotFound(MicroError):
    """404: the service, endpoint or key does not exist."""

    code = 404


class MethodNotAllowed(MicroError):
    """405: the method exists but cannot be used this way."""

    code = 405


class Timeout(MicroError):
    """408: the call's deadline passed before an answer came."""

    code = 408


class Conflict(MicroError):
    """409: the thing already exists."""

    code = 409


class PayloadTooLarge(MicroError):
    """413: the request or message is over the configured limit."""

    code = 413


class InternalServerError(MicroError):
    """500: the handler failed with an unexpected error."""

    code = 500


class NotImplemented(MicroError):
    """501: the operation is not supported by this implementation."""

    code = 501


class BadGateway(MicroError):
    """502: a proxy got a bad answer from the node behind it."""

    code = 502


class ServiceUnavailable(MicroError):
    """503: no node of the service could be reached."""

    code = 503


class GatewayTimeout(MicroError):
    """504: a proxy timed out waiting for the node behind it."""

    code = 504


class ConnectionError(ServiceUnavailable):
    """503 raised when a call could not reach its node at all (safe to retry elsewhere)."""


_BY_CODE: dict[int, type[MicroError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Timeout,
        Conflict,
        PayloadTooLarge,
        InternalServerError,
        NotImplemented,
        BadGateway,
        ServiceUnavailable,
        GatewayTimeout,
    )
}


def new(id: str, detail: str, code: int) -> MicroError:
    """The typed error for ``code`` (a plain MicroError for codes without a class)."""
    cls = _BY_CODE.get(code, MicroError)
    return cls(id, detail, code)


def from_json(data: bytes | str) -> MicroError:
    """Parse Micro's error JSON into its typed error; text that is not one becomes a 500's detail."""
    try:
        wire = _decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        return InternalServerError("", text)
    return new(wire.id, wire.detail, wire.code or 500)


def bad_request(id: str, detail: str) -> BadRequest:
    """A 400 error."""
    return BadRequest(id, detail)


def unauthorized(id: str, detail: str) -> Unauthorized:
    """A 401 error."""
    return Unauthorized(id, detail)


def forbidden(id: str, detail: str) -> Forbidden:
    """A 403 error."""
    return Forbidden(id, detail)


def not_found(id: str, detail: str) -> NotFound:
    """A 404 error."""
    return NotFound(id, detail)


def method_not_allowed(id: str, detail: str) -> MethodNotAllowed:
    """A 405 error."""
    return MethodNotAllowed(id, detail)


def timeout(id: str, detail: str) -> Timeout:
    """A 408 error."""
    return Timeout(id, detail)


def conflict(id: str, detail: str) -> Conflict:
    """A 409 error."""
    return Conflict(id, detail)


def payload_too_large(id: str, detail: str) -> PayloadTooLarge:
    """A 413 error."""
    return PayloadTooLarge(id, detail)


def internal_server_error(id: str, detail: str) -> InternalServerError:
    """A 500 error."""
    return InternalServerError(id, detail)


def not_implemented(id: str, detail: str) -> NotImplemented:
    """A 501 error."""
    return NotImplemented(id, detail)


def bad_gateway(id: str, detail: str) -> BadGateway:
    """A 502 error."""
    return BadGateway(id, detail)


def service_unavailable(id: str, detail: str) -> ServiceUnavailable:
    """A 503 error."""
    return ServiceUnavailable(id, detail)


def gateway_timeout(id: str, detail: str) -> GatewayTimeout:
    """A 504 error."""
    return GatewayTimeout(id, detail)
