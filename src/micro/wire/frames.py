"""Frames of the native wire, and the incremental decoder that cuts a byte stream into them.

A frame is a 10-byte header followed by a payload::

    +----------------+----------------+--------+--------+-----------------+
    | length  (u32)  | stream id (u32)| kind u8| flags u8| payload (length)|
    +----------------+----------------+--------+--------+-----------------+

``length`` counts the payload only. Every call is a stream, as in HTTP/2: the caller opens it
with a REQUEST frame (whose payload is a small msgpack header and the first body) and both
sides exchange MESSAGE frames until END; a unary call is one REQUEST with END_STREAM and one
RESPONSE. ERROR ends a call with Micro's error JSON; CANCEL aborts it from the caller's side;
WINDOW grants the peer credit to send more stream messages (flow control); GOAWAY (stream 0,
from a listener) says the connection is idle and will close: the caller starts no new call
on it and closes it once its calls in flight are done (as HTTP/2's GOAWAY), so no call is
lost to the close.

Anything that cannot be a frame (an unknown kind, a length over the limit) is a
:class:`ProtocolError`: the connection that carried it is closed, and only that one. So a
sender never writes what its peer would refuse: a request whose metadata does not fit the
header's 16-bit length is a 400, and a frame over the limit a 413 for that one call
(:mod:`micro.wire.connection`); both ends use the same limit, :data:`DEFAULT_MAX_FRAME`.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

import msgspec

from micro import codec, errors

__all__ = [
    "CANCEL",
    "DEFAULT_MAX_FRAME",
    "END",
    "END_STREAM",
    "ERROR",
    "GOAWAY",
    "HEADER",
    "MAX_BODY",
    "MAX_METADATA",
    "MESSAGE",
    "NO_BODY",
    "REQUEST",
    "RESPONSE",
    "STREAMING",
    "WINDOW",
    "Frame",
    "FrameDecoder",
    "ProtocolError",
    "RequestHeader",
    "decode_window",
    "encode_frame",
    "encode_request",
    "encode_window",
    "refused",
    "split_request",
    "too_large",
]

HEADER: Final = struct.Struct("!IIBB")
HEADER_SIZE: Final = HEADER.size
_U16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("!I")

REQUEST: Final = 1
RESPONSE: Final = 2
MESSAGE: Final = 3
END: Final = 4
ERROR: Final = 5
CANCEL: Final = 6
WINDOW: Final = 7
GOAWAY: Final = 8
_KINDS: Final = frozenset({REQUEST, RESPONSE, MESSAGE, END, ERROR, CANCEL, WINDOW, GOAWAY})

END_STREAM: Final = 0x1
"""On REQUEST: the caller sends no more messages (unary and server-streaming calls)."""
NO_BODY: Final = 0x2
"""On REQUEST: the frame carries no first message (client- and bidi-streaming calls)."""

STREAMING: Final = 0x4
"""On REQUEST: the caller expects a streamed answer (lets a server refuse a mismatched call)."""

DEFAULT_MAX_FRAME: Final = 16 * 1024 * 1024

MAX_METADATA: Final = 0xFFFF
"""The most bytes a request's encoded header (service, endpoint, metadata) may take."""

MAX_BODY: Final = DEFAULT_MAX_FRAME - 2 - MAX_METADATA
"""The largest body a request frame carries whatever its metadata (16 MiB less 64 KiB):
the most an edge may take in for one request."""


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame; its connection must be closed."""


class Frame(NamedTuple):
    """One decoded frame."""

    stream: int
    kind: int
    flags: int
    payload: bytes


class RequestHeader(msgspec.Struct, array_like=True, frozen=True):
    """What a REQUEST frame says about the call besides its body.

    ``timeout`` is the time left, in milliseconds, when the caller sent it (0 = none):
    relative, so that deadlines survive clocks that disagree between hosts.
    """

    service: str
    endpoint: str
    content_type: str = codec.MSGPACK
    timeout: float = 0.0
    metadata: dict[str, str] = {}


_encode_header = msgspec.msgpack.Encoder().encode
_decode_header = msgspec.msgpack.Decoder(RequestHeader).decode


def encode_frame(stream: int, kind: int, flags: int = 0, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    return HEADER.pack(len(payload), stream, kind, flags) + payload


def encode_request(stream: int, header: RequestHeader, body: bytes | None, flags: int) -> bytes:
    """A REQUEST frame; ``body=None`` marks a stream whose messages follow in MESSAGE frames.
    Metadata over :data:`MAX_METADATA` is the caller's mistake, a 400 it can read."""
    head = _encode_header(header)
    if len(head) > MAX_METADATA:
        raise errors.BadRequest(
            "micro.wire",
            f"request metadata is too large: {len(head)} bytes encoded, over the limit of "
            f"{MAX_METADATA} (64 KiB)",
        )
    if body is None:
        flags |= NO_BODY
        body = b""
    payload = _U16.pack(len(head)) + head + body
    return HEADER.pack(len(payload), stream, REQUEST, flags) + payload


def too_large(what: str, size: int, limit: int) -> errors.PayloadTooLarge:
    """The 413 of a payload a sender will not write: over the frame limit, the peer would
    drop the connection and every call on it."""
    return errors.PayloadTooLarge(
        "micro.wire", f"{what} is {size} bytes, over the frame limit of {limit} bytes"
    )


def refused(frame: bytes, limit: int) -> bytes:
    """The ERROR frame (413) of the call ``frame``, over the limit, belongs to."""
    length, stream_id, _, _ = HEADER.unpack_from(frame)
    error = too_large("the answer", length, limit)
    return encode_frame(stream_id, ERROR, 0, error.to_json())


def split_request(payload: bytes) -> tuple[RequestHeader, bytes]:
    """The header and body of a REQUEST payload; raises ``ValueError`` when malformed."""
    if len(payload) < 2:
        raise ValueError("request frame too short")
    (n,) = _U16.unpack_from(payload)
    if len(payload) < 2 + n:
        raise ValueError("request header is truncated")
    try:
        header = _decode_header(payload[2 : 2 + n])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"malformed request header: {exc}") from exc
    return header, payload[2 + n :]


def encode_window(stream: int, credit: int) -> bytes:
    """A WINDOW frame granting ``credit`` more messages on ``stream``."""
    return HEADER.pack(4, stream, WINDOW, 0) + _U32.pack(credit)


def decode_window(payload: bytes) -> int:
    """The credit a WINDOW frame grants."""
    if len(payload) != 4:
        raise ProtocolError("window frame must carry 4 bytes")
    credit: int = _U32.unpack(payload)[0]
    return credit


class FrameDecoder:
    """Cuts a byte stream, arriving in pieces of any size, into frames.

    Feeding the same bytes split in any way yields the same frames: the property the
    hypothesis tests check. After a :class:`ProtocolError` the decoder is unusable.
    """

    __slots__ = ("_buf", "max_frame", "needed")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame
        self.needed = 0
        """The bytes the frame begun will take once whole, header included (what arrived
        while its header is incomplete; ``0`` when no frame is begun)."""

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole frame (non-zero at EOF means truncation)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Take more bytes; return every frame they complete, in order."""
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        frames: list[Frame] = []
        pos = 0
        end = len(view)
        unpack = HEADER.unpack_from
        max_frame = self.max_frame
        whole = view is data  # slices of bytes are bytes already; of the buffer, copied
        new = tuple.__new__  # Frame(...) without the Python-level __new__ a NamedTuple has
        while end - pos >= HEADER_SIZE:
            length, stream, kind, flags = unpack(view, pos)
            if kind not in _KINDS:
                raise ProtocolError(f"unknown frame kind {kind}")
            if length > max_frame:
                raise ProtocolError(f"frame of {length} bytes is over the limit of {max_frame}")
            start = pos + HEADER_SIZE
            stop = start + length
            if stop > end:
                break
            payload = view[start:stop] if whole else bytes(view[start:stop])
            frames.append(new(Frame, (stream, kind, flags, payload)))
            pos = stop
        if buf:
            del buf[:pos]
        elif pos < end:
            buf += data[pos:]
        rest = len(buf)
        self.needed = rest if rest < HEADER_SIZE else HEADER_SIZE + _U32.unpack_from(buf)[0]
        return frames
