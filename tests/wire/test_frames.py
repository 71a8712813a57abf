"""Frames and the incremental decoder, checked as properties over any frames and any split."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from micro import codec, errors
from micro.wire import frames
from micro.wire.frames import Frame, FrameDecoder, ProtocolError, RequestHeader

KINDS = [
    frames.REQUEST,
    frames.RESPONSE,
    frames.MESSAGE,
    frames.END,
    frames.ERROR,
    frames.CANCEL,
    frames.WINDOW,
    frames.GOAWAY,
]

a_frame = st.builds(
    Frame,
    stream=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(KINDS),
    flags=st.integers(0, 255),
    payload=st.binary(max_size=300),
)


def _encode(fs: list[Frame]) -> bytes:
    return b"".join(frames.encode_frame(f.stream, f.kind, f.flags, f.payload) for f in fs)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(st.lists(a_frame, max_size=12), st.lists(st.integers(0, 10_000), max_size=40))
def test_any_split_yields_the_same_frames(fs: list[Frame], cuts: list[int]) -> None:
    data = _encode(fs)
    decoder = FrameDecoder()
    got: list[Frame] = []
    for chunk in _split(data, cuts):
        got.extend(decoder.feed(chunk))
    assert got == fs
    assert decoder.pending == 0


@given(st.lists(a_frame, max_size=6))
def test_byte_by_byte_yields_the_same_frames(fs: list[Frame]) -> None:
    data = _encode(fs)
    decoder = FrameDecoder()
    got: list[Frame] = []
    for i in range(len(data)):
        got.extend(decoder.feed(data[i : i + 1]))
    assert got == fs


@given(st.lists(a_frame, min_size=1, max_size=6), st.data())
def test_truncated_stream_leaves_bytes_pending(fs: list[Frame], data: st.DataObject) -> None:
    whole = _encode(fs)
    boundaries = [len(_encode(fs[:i])) for i in range(len(fs) + 1)]
    cut = data.draw(st.integers(0, len(whole) - 1))
    decoder = FrameDecoder()
    got = decoder.feed(whole[:cut])
    # Only whole frames come out, as a prefix; the rest of a cut frame is held, not lost.
    done = max(i for i, b in enumerate(boundaries) if b <= cut)
    assert got == fs[:done]
    assert decoder.pending == cut - boundaries[done]
    assert (decoder.pending > 0) == (cut not in boundaries)


def test_pending_is_non_zero_inside_a_frame() -> None:
    one = frames.encode_frame(1, frames.MESSAGE, 0, b"hello")
    decoder = FrameDecoder()
    assert decoder.feed(one[:3]) == []
    assert decoder.pending == 3
    assert decoder.feed(one[3:-1]) == []
    assert decoder.pending == len(one) - 1
    assert decoder.feed(one[-1:]) == [Frame(1, frames.MESSAGE, 0, b"hello")]
    assert decoder.pending == 0


@given(
    st.lists(a_frame, max_size=5),
    st.integers(0, 255).filter(lambda k: k not in KINDS),
    st.lists(st.integers(0, 10_000), max_size=10),
)
def test_unknown_kind_is_a_protocol_error_however_split(
    good: list[Frame], kind: int, cuts: list[int]
) -> None:
    data = _encode(good) + frames.HEADER.pack(0, 1, kind, 0)
    decoder = FrameDecoder()
    got: list[Frame] = []

    def feed_all() -> None:
        for chunk in _split(data, cuts):
            got.extend(decoder.feed(chunk))

    with pytest.raises(ProtocolError, match=f"unknown frame kind {kind}"):
        feed_all()
    assert got == good[: len(got)]


@given(st.integers(0, 4096), st.integers(1, 2**32 - 1 - 4096))
def test_length_over_max_frame_is_a_protocol_error(limit: int, over: int) -> None:
    decoder = FrameDecoder(max_frame=limit)
    with pytest.raises(ProtocolError, match="over the limit"):
        decoder.feed(frames.HEADER.pack(limit + over, 1, frames.MESSAGE, 0))


def test_length_at_max_frame_is_accepted() -> None:
    decoder = FrameDecoder(max_frame=4)
    assert decoder.feed(frames.encode_frame(7, frames.MESSAGE, 0, b"abcd")) == [
        Frame(7, frames.MESSAGE, 0, b"abcd")
    ]


@given(
    service=st.text(max_size=20),
    endpoint=st.text(max_size=20),
    timeout=st.floats(0, 1e9),
    metadata=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5),
    body=st.one_of(st.none(), st.binary(max_size=100)),
    flags=st.sampled_from([0, frames.END_STREAM, frames.STREAMING]),
)
def test_request_header_round_trip(
    service: str,
    endpoint: str,
    timeout: float,
    metadata: dict[str, str],
    body: bytes | None,
    flags: int,
) -> None:
    header = RequestHeader(service, endpoint, codec.JSON, timeout, metadata)
    (frame,) = FrameDecoder().feed(frames.encode_request(9, header, body, flags))
    assert (frame.stream, frame.kind) == (9, frames.REQUEST)
    assert bool(frame.flags & frames.NO_BODY) == (body is None)
    assert frame.flags & flags == flags
    got_header, got_body = frames.split_request(frame.payload)
    assert got_header == header
    assert got_body == (body or b"")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "too short"),
        (b"\x00", "too short"),
        (b"\x00\x10abc", "truncated"),
        (b"\x00\x03\xc1\xc1\xc1", "malformed"),
        (b"\x00\x01\x01", "malformed"),
    ],
)
def test_malformed_request_payload_is_a_value_error(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        frames.split_request(payload)


def test_oversized_request_metadata_is_a_400() -> None:
    header = RequestHeader("s", "E.M", metadata={"big": "x" * 70_000})
    with pytest.raises(errors.BadRequest, match="too large"):
        frames.encode_request(1, header, b"", 0)


@given(st.integers(0, 2**32 - 1))
def test_window_round_trip(credit: int) -> None:
    (frame,) = FrameDecoder().feed(frames.encode_window(3, credit))
    assert (frame.stream, frame.kind) == (3, frames.WINDOW)
    assert frames.decode_window(frame.payload) == credit


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x01", b"\x00\x00\x00\x01\x00"])
def test_window_of_the_wrong_size_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        frames.decode_window(payload)
