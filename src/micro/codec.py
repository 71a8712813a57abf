"""Body codecs: JSON and msgpack through msgspec, chosen per call by content type.

A body on the wire is bytes tagged with a content type. The server decodes a request
straight into the handler's typed request (so JSON from the gateway never passes
through a dict) and answers in the request's content type. Decoding failures become
``400`` errors naming the offending field, never a crash.

Pydantic models are supported through an adapter when pydantic is installed: msgspec
decodes to builtins and pydantic validates; encoding goes through ``model_dump``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from micro import errors

__all__ = ["JSON", "MSGPACK", "Codec", "codec_for", "is_pydantic_model"]

JSON: Final = "application/json"
MSGPACK: Final = "application/msgpack"


def is_pydantic_model(tp: Any) -> bool:
    """True when ``tp`` is a pydantic model class (checked without importing pydantic)."""
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_fields")


def _enc_hook(obj: Any) -> Any:
    if hasattr(obj, "model_dump") and is_pydantic_model(type(obj)):
        return obj.model_dump(mode="json")
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise NotImplementedError(f"cannot encode objects of type {type(obj).__name__}")


def _field_error(exc: Exception) -> str:
    """A readable message for a validation error, naming the field where there is one."""
    text = str(exc)
    # msgspec: "Expected `int`, got `str` - at `$.count`"
    return text.replace(" - at `$.", " at field `").replace("`$`", "the body")


class Codec:
    """Encodes values to bytes and decodes bytes into typed values for one content type."""

    __slots__ = ("_decoders", "_encode", "_module", "content_type")

    def __init__(self, content_type: str, module: Any) -> None:
        self.content_type = content_type
        self._module = module
        self._encode = module.Encoder(enc_hook=_enc_hook).encode
        self._decoders: dict[Any, Any] = {}

    def encode(self, obj: Any) -> bytes:
        """Encode a value (Struct, dataclass, TypedDict, pydantic model, builtins) to bytes."""
        try:
            data: bytes = self._encode(obj)
        except (TypeError, NotImplementedError, OverflowError) as exc:
            raise errors.InternalServerError(
                "micro.codec", f"cannot encode response: {exc}"
            ) from exc
        return data

    def decode(self, data: bytes, tp: Any = Any) -> Any:
        """Decode ``data`` into ``tp``; a malformed body or a wrong field is a ``400``."""
        dec = self._decoders.get(tp)
        if dec is None:
            dec = self._decoder(tp)
        try:
            return dec(data)
        except msgspec.ValidationError as exc:
            raise errors.BadRequest("micro.codec", f"invalid request: {_field_error(exc)}") from exc
        except msgspec.DecodeError as exc:
            raise errors.BadRequest("micro.codec", f"malformed {self._name} body: {exc}") from exc
        except Exception as exc:  # pydantic's ValidationError, without importing pydantic
            if type(exc).__name__ == "ValidationError":
                raise errors.BadRequest("micro.codec", f"invalid request: {exc}") from exc
            raise

    @property
    def _name(self) -> str:
        return "JSON" if self.content_type == JSON else "msgpack"

    def _decoder(self, tp: Any) -> Any:
        if is_pydantic_model(tp):
            raw = self._module.Decoder().decode

            def decode(data: bytes) -> Any:
                return tp.model_validate(raw(data))

            dec: Any = decode
        else:
            dec = self._module.Decoder(tp).decode
        self._decoders[tp] = dec
        return dec


_CODECS: dict[str, Codec] = {
    JSON: Codec(JSON, msgspec.json),
    MSGPACK: Codec(MSGPACK, msgspec.msgpack),
}
# Aliases Micro and gRPC clients send for the same two formats.
for _alias in ("application/grpc+json", "application/json-rpc", "text/json"):
    _CODECS[_alias] = _CODECS[JSON]
_CODECS["application/x-msgpack"] = _CODECS[MSGPACK]


def codec_for(content_type: str) -> Codec:
    """The codec for a content type (charset parameters ignored); unknown types are a ``400``."""
    codec = _CODECS.get(content_type)
    if codec is None:
        codec = _CODECS.get(content_type.split(";", 1)[0].strip().lower())
        if codec is None:
            raise errors.BadRequest("micro.codec", f"unsupported content type {content_type!r}")
    return codec
