"""The RPC server and client over real sockets: every call shape, errors, deadlines,
cancellation, flow control, dying connections, graceful stop, Unix sockets and TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
from tests.rpc.greeter_service import SERVICE, Greeter, Probe, Req, Resp, WatchedServer

from micro import codec, errors
from micro.rpc import Client, ClientStream, Server, endpoints_of
from micro.wire import frames
from micro.wire.pool import Pool
from micro.wire.stream import DEFAULT_WINDOW

CONTENT_TYPES = [codec.MSGPACK, codec.JSON]
BOUND = 10.0
"""Upper bound on any wait in these tests: a hang fails the test instead of stalling the run."""


async def _send_many(stream: ClientStream[Any], count: int) -> None:
    for i in range(count):
        await stream.send(Req(str(i)))


async def _recv_many(stream: ClientStream[Any], count: int) -> None:
    for _ in range(count):
        await stream.recv()


# -- the four call shapes ------------------------------------------------------------------


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_unary_call_returns_the_typed_response(client: Client, content_type: str) -> None:
    async with asyncio.timeout(BOUND):
        resp = await client.call(
            SERVICE,
            "Greeter.Hello",
            Req("ada"),
            response_type=Resp,
            content_type=content_type,
        )
    assert resp == Resp("hello ada")


async def test_json_body_passes_through_call_raw(client: Client) -> None:
    async with asyncio.timeout(BOUND):
        data = await client.call_raw(
            SERVICE, "Greeter.Hello", b'{"name": "json"}', content_type=codec.JSON
        )
    assert data == b'{"msg":"hello json"}'


async def test_many_concurrent_calls_share_one_connection(
    server: WatchedServer, client: Client
) -> None:
    async with asyncio.timeout(BOUND):
        replies = await asyncio.gather(
            *(
                client.call(SERVICE, "Greeter.Hello", Req(str(i)), response_type=Resp)
                for i in range(50)
            )
        )
    assert [r.msg for r in replies] == [f"hello {i}" for i in range(50)]
    assert len(server.accepted) == 1


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_server_streaming(client: Client, content_type: str) -> None:
    async with asyncio.timeout(BOUND):
        async with await client.stream(
            SERVICE,
            "Greeter.Count",
            Req("n", count=5),
            response_type=Resp,
            content_type=content_type,
        ) as stream:
            got = [r.msg async for r in stream]
    assert got == [f"n {i}" for i in range(5)]


async def test_server_streaming_with_no_messages_ends_cleanly(client: Client) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Count", Req("n", count=0))
        assert [r async for r in stream] == []
        with pytest.raises(StopAsyncIteration):
            await stream.recv()


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_client_streaming(client: Client, content_type: str) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(
            SERVICE, "Greeter.Total", response_type=Resp, content_type=content_type
        )
        for name in ("a", "b", "c"):
            await stream.send(Req(name))
        resp = await stream.response()
    assert resp == Resp("a,b,c")


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_bidi_streaming_interleaves_requests_and_answers(
    client: Client, content_type: str
) -> None:
    async with asyncio.timeout(BOUND):
        async with await client.stream(
            SERVICE, "Greeter.Upper", response_type=Resp, content_type=content_type
        ) as stream:
            # Each answer comes back before the next request is sent: a real conversation.
            for name in ("x", "y", "z"):
                await stream.send(Req(name, count=2))
                assert await stream.recv() == Resp(name.upper())
                assert await stream.recv() == Resp(name.upper())
            stream.close_send()
            assert [r async for r in stream] == []


# -- metadata and deadlines ----------------------------------------------------------------


async def test_metadata_arrives_in_the_handlers_context(server: WatchedServer) -> None:
    client = Client(proxy=str(server.address), metadata={"micro-namespace": "team"})
    try:
        async with asyncio.timeout(BOUND):
            seen = await client.call(
                SERVICE, "Greeter.Meta", metadata={"Authorization": "Bearer t", "x-user": "u1"}
            )
    finally:
        await client.close()
    assert seen == {"micro-namespace": "team", "authorization": "Bearer t", "x-user": "u1"}


async def test_client_wide_metadata_keys_are_lower_case_too(server: WatchedServer) -> None:
    client = Client(proxy=str(server.address), metadata={"Micro-Namespace": "team"})
    try:
        async with asyncio.timeout(BOUND):
            seen = await client.call(SERVICE, "Greeter.Meta")
    finally:
        await client.close()
    assert seen == {"micro-namespace": "team"}


async def test_calls_made_while_serving_inherit_deadline_and_namespace(
    server: WatchedServer, greeter: Greeter
) -> None:
    greeter.client = Client(proxy=str(server.address))
    caller = Client(proxy=str(server.address))
    try:
        async with asyncio.timeout(BOUND):
            got = await caller.call(
                SERVICE,
                "Greeter.Relay",
                timeout=5.0,
                metadata={"micro-namespace": "team", "traceparent": "00-abc-def-01", "x": "1"},
            )
    finally:
        await caller.close()
        await greeter.client.close()
    # The onward call asked for 60 s but gets no more than what its caller had left.
    assert 0 < got["theirs"] <= got["mine"] <= 5.0
    assert got["meta"] == {"micro-namespace": "team", "traceparent": "00-abc-def-01"}


async def test_handler_sees_the_callers_deadline(client: Client, probe: Probe) -> None:
    async with asyncio.timeout(BOUND):
        left = await client.call(SERVICE, "Greeter.Deadline", timeout=5.0)
    assert probe.deadline_left is not None
    assert 0 < left <= 5.0


async def test_client_timeout_raises_408_and_cancels_the_handler(
    client: Client, probe: Probe
) -> None:
    with pytest.raises(errors.Timeout) as info:
        await client.call(SERVICE, "Greeter.Block", Req("slow"), timeout=0.05)
    assert info.value.code == 408
    async with asyncio.timeout(BOUND):
        await probe.cancelled.wait()
    assert probe.finished.is_set()
    assert not probe.release.is_set()


async def test_the_server_itself_ends_a_call_at_its_deadline_with_408(
    server: WatchedServer, probe: Probe
) -> None:
    # A caller that sends a deadline but keeps no timer of its own (no CANCEL comes): the
    # server's own timer cancels the handler and answers 408.
    pool = Pool()
    try:
        conn = await pool.get(str(server.address))
        header = frames.RequestHeader(SERVICE, "Greeter.Block", codec.MSGPACK, 50.0, {})
        async with asyncio.timeout(BOUND):
            with pytest.raises(errors.Timeout) as info:
                await conn.unary(header, codec.codec_for(codec.MSGPACK).encode(Req("x")), None)
            await probe.cancelled.wait()
        assert info.value.code == 408
        assert "exceeded its deadline" in info.value.detail
        assert not probe.release.is_set()
    finally:
        await pool.close()


async def test_a_call_cancelled_in_the_read_that_brought_it_is_counted_done(
    server: WatchedServer, probe: Probe
) -> None:
    # REQUEST and CANCEL arrive in one read: the call's task is cancelled before its first
    # step, so its body (and its finally) never runs; it must still leave the books.
    msgpack = codec.codec_for(codec.MSGPACK)
    block = frames.RequestHeader(SERVICE, "Greeter.Block", codec.MSGPACK, 0.0, {})
    hello = frames.RequestHeader(SERVICE, "Greeter.Hello", codec.MSGPACK, 0.0, {})
    assert server.address is not None
    reader, writer = await asyncio.open_connection(server.address.host, server.address.port)
    try:
        writer.write(
            frames.encode_request(1, block, msgpack.encode(Req("x")), frames.END_STREAM)
            + frames.encode_frame(1, frames.CANCEL)
            # frames of a connection are handled in order: this one's answer comes after
            + frames.encode_request(3, hello, msgpack.encode(Req("y")), frames.END_STREAM)
        )
        decoder = frames.FrameDecoder()
        answers: list[frames.Frame] = []
        async with asyncio.timeout(BOUND):
            while not answers:
                answers += decoder.feed(await reader.read(65536))
        assert [(f.stream, f.kind) for f in answers] == [(3, frames.RESPONSE)]
        assert server._inflight == 0
        assert not server.accepted[0].streams
        assert not probe.started.is_set()  # the blocked handler never ran
    finally:
        writer.close()


async def test_cancelling_the_caller_cancels_the_handler(client: Client, probe: Probe) -> None:
    task = asyncio.create_task(client.call(SERVICE, "Greeter.Block", Req("x")))
    async with asyncio.timeout(BOUND):
        await probe.started.wait()
        task.cancel()
        await probe.cancelled.wait()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_closing_a_stream_cancels_the_server_generator(client: Client, probe: Probe) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Endless", Req("x"))
        assert await stream.recv() == 0
        assert await stream.recv() == 1
        await stream.close()
        await probe.finished.wait()


async def test_closing_a_stream_cancels_a_generator_waiting_between_messages(
    client: Client, probe: Probe
) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Trickle", Req("x"))
        assert await stream.recv() == 0
        await stream.close()
        await probe.cancelled.wait()
    assert probe.finished.is_set()
    assert not probe.release.is_set()


async def test_a_cancelled_call_leaves_the_connection_usable(client: Client, probe: Probe) -> None:
    with pytest.raises(errors.Timeout):
        await client.call(SERVICE, "Greeter.Block", Req("slow"), timeout=0.01)
    async with asyncio.timeout(BOUND):
        assert await client.call(SERVICE, "Greeter.Hello", Req("after"), response_type=Resp) == (
            Resp("hello after")
        )


# -- errors --------------------------------------------------------------------------------


async def test_handler_error_arrives_typed_with_id_and_detail(client: Client) -> None:
    with pytest.raises(errors.NotFound) as info:
        await client.call(SERVICE, "Greeter.Missing", Req("bob"))
    assert info.value.id == "greeter.missing"
    assert info.value.detail == "no greeting for bob"
    assert info.value.code == 404


async def test_error_in_the_middle_of_a_stream_arrives_typed_after_the_messages(
    client: Client,
) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Doomed", Req("eve"), response_type=Resp)
        assert await stream.recv() == Resp("first")
        with pytest.raises(errors.Forbidden) as info:
            await stream.recv()
    assert info.value.id == "greeter.doomed"
    assert info.value.detail == "eve may not see more"


async def test_unexpected_exception_is_a_500_without_a_traceback(
    server: WatchedServer, client: Client
) -> None:
    with pytest.raises(errors.InternalServerError) as info:
        await client.call(SERVICE, "Greeter.Broken", Req("x"))
    assert info.value.code == 500
    assert "boom" in info.value.detail
    assert "Traceback" not in info.value.detail
    assert "File " not in info.value.detail
    assert server.stats["errors"] == 1


async def test_invalid_request_is_a_400_naming_the_field(client: Client) -> None:
    with pytest.raises(errors.BadRequest) as info:
        await client.call(SERVICE, "Greeter.Hello", {"name": "x", "count": "many"})
    assert "count" in info.value.detail


@pytest.mark.parametrize(
    ("service", "endpoint", "named"),
    [
        ("nobody", "Greeter.Hello", "nobody"),
        (SERVICE, "Greeter.Nothing", "Greeter.Nothing"),
    ],
)
async def test_unknown_service_or_endpoint_is_not_found(
    client: Client, service: str, endpoint: str, named: str
) -> None:
    with pytest.raises(errors.NotFound) as info:
        await client.call(service, endpoint, Req("x"))
    assert named in info.value.detail


async def test_unknown_endpoint_is_not_found_for_streams_too(client: Client) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Nothing", Req("x"))
        with pytest.raises(errors.NotFound):
            await stream.recv()


async def test_streaming_endpoint_called_as_unary_is_a_400(client: Client) -> None:
    with pytest.raises(errors.BadRequest) as info:
        await client.call(SERVICE, "Greeter.Count", Req("x"))
    assert "stream" in info.value.detail


async def test_unary_endpoint_called_as_a_stream_is_a_400(client: Client) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Hello", Req("x"))
        with pytest.raises(errors.BadRequest) as info:
            await stream.recv()
    assert "unary" in info.value.detail


async def test_client_stream_refused_by_the_server_fails_the_sender(client: Client) -> None:
    # The caller sends more than a window before the server's error arrives: the sender,
    # waiting for credit that will never come, must see the error rather than hang.
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Nothing")
        with pytest.raises(errors.NotFound):
            await _send_many(stream, DEFAULT_WINDOW * 3)


async def test_client_stream_answered_early_does_not_block_the_sender(client: Client) -> None:
    # The handler answers after the first message and reads no more: the caller's later
    # sends, beyond the window the server will never renew, must not wait forever.
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.First", response_type=Resp)
        await _send_many(stream, DEFAULT_WINDOW * 3)
        assert await stream.response() == Resp("0")


async def test_bidi_stream_ended_early_does_not_block_the_sender(client: Client) -> None:
    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.Head", response_type=Resp)
        await _send_many(stream, DEFAULT_WINDOW * 3)
        stream.close_send()
        assert [r async for r in stream] == [Resp("0")]


async def test_slow_handler_blocks_the_client_sender_at_the_window(
    client: Client, probe: Probe
) -> None:
    total = DEFAULT_WINDOW * 3
    sent = 0

    async def sender(stream: ClientStream[Any]) -> None:
        nonlocal sent
        for _ in range(total):
            await stream.send(Req("n", count=1))
            sent += 1

    async with asyncio.timeout(BOUND):
        stream = await client.stream(SERVICE, "Greeter.GatedTotal")
        task = asyncio.create_task(sender(stream))
        # Round trips on the same connection let the sender run as far as it can.
        for _ in range(3):
            await client.call(SERVICE, "Greeter.Hello", Req("barrier"))
        assert sent == DEFAULT_WINDOW
        assert not task.done()
        probe.release.set()
        await task
        assert await stream.response() == total


# -- flow control --------------------------------------------------------------------------


def _queued_messages(stream: object) -> int:
    return sum(isinstance(item, bytes) for item in stream._stream._queue)  # type: ignore[attr-defined]


async def test_slow_reader_bounds_the_queue_and_blocks_the_producer(
    client: Client, probe: Probe
) -> None:
    total = 10_000
    async with asyncio.timeout(BOUND * 3):
        stream = await client.stream(SERVICE, "Greeter.Flood", Req("f", count=total))
        await probe.reached.wait()
        # A unary call on the same connection is a barrier: its answer arrives after every
        # message the producer could send without more credit.
        for _ in range(2):
            await client.call(SERVICE, "Greeter.Hello", Req("barrier"))
        assert probe.produced == DEFAULT_WINDOW + 1  # the generator is parked on credit
        assert _queued_messages(stream) == DEFAULT_WINDOW

        received = 0
        peak = 0
        for _ in range(total + 1):
            try:
                item = await stream.recv()
            except StopAsyncIteration:
                break
            assert item == received
            received += 1
            queued = _queued_messages(stream)
            peak = max(peak, queued)
            assert queued <= DEFAULT_WINDOW
            assert probe.produced - received <= DEFAULT_WINDOW + 1
    assert received == total
    assert peak == DEFAULT_WINDOW - 1


# -- dying connections and stopping --------------------------------------------------------


async def test_server_stop_fails_pending_calls_at_once(
    server: WatchedServer, client: Client, probe: Probe
) -> None:
    call = asyncio.create_task(client.call(SERVICE, "Greeter.Block", Req("x")))
    async with asyncio.timeout(BOUND):
        await probe.started.wait()
        stream = await client.stream(SERVICE, "Greeter.Endless", Req("x"))
        assert await stream.recv() == 0  # the stream is being served
        await server.stop(grace=0)
        with pytest.raises(errors.ConnectionError):
            await call
        # A stream is ended by the server itself, saying why, before the connection goes.
        with pytest.raises(errors.ServiceUnavailable, match="shutting down"):
            await _recv_many(stream, DEFAULT_WINDOW + 1)
        await probe.cancelled.wait()


async def test_killed_transport_fails_pending_calls_and_the_next_call_redials(
    server: WatchedServer, client: Client, probe: Probe
) -> None:
    call = asyncio.create_task(client.call(SERVICE, "Greeter.Block", Req("x")))
    async with asyncio.timeout(BOUND):
        await probe.started.wait()
        stream = await client.stream(SERVICE, "Greeter.Total")
        (conn,) = server.accepted
        assert conn.transport is not None
        conn.transport.abort()
        with pytest.raises(errors.ConnectionError):
            await call
        with pytest.raises(errors.ConnectionError):
            await stream.response()
        resp = await client.call(SERVICE, "Greeter.Hello", Req("again"), response_type=Resp)
    assert resp == Resp("hello again")
    assert len(server.accepted) == 2


async def test_graceful_stop_finishes_in_flight_calls_and_refuses_new_ones(
    server: WatchedServer, client: Client, probe: Probe
) -> None:
    address = str(server.address)
    in_flight = asyncio.create_task(client.call(SERVICE, "Greeter.Block", Req("a")))
    async with asyncio.timeout(BOUND):
        await probe.started.wait()
        stopping = asyncio.create_task(server.stop(grace=BOUND * 2))
        for _ in range(100):  # stop() marks the server as stopping in its first step
            if server._stopping:
                break
            await asyncio.sleep(0)
        assert server._stopping
        # A new call on the open connection is refused with 503...
        with pytest.raises(errors.ServiceUnavailable) as info:
            await client.call(SERVICE, "Greeter.Hello", Req("late"))
        assert type(info.value) is errors.ServiceUnavailable
        assert info.value.code == 503
        # ...and so is a new connection (the listener is closed).
        other = Client(proxy=address, pool=Pool(connect_timeout=2.0))
        try:
            with pytest.raises(errors.ConnectionError):
                await other.call(SERVICE, "Greeter.Hello", Req("new"))
        finally:
            await other.close()
        assert not stopping.done()
        probe.release.set()
        assert await in_flight == {"msg": "released a"}
        await stopping
    assert not probe.cancelled.is_set()


# -- addresses: Unix sockets and TLS -------------------------------------------------------


async def test_unix_socket_address(tmp_path: Path) -> None:
    path = tmp_path / "g.sock"
    server = WatchedServer()
    server.add(SERVICE, endpoints_of(Greeter(Probe())))
    bound = await server.start(f"unix:{path}")
    assert str(bound) == f"unix:{path}"
    client = Client(proxy=f"unix:{path}")
    try:
        async with asyncio.timeout(BOUND):
            resp = await client.call(SERVICE, "Greeter.Hello", Req("unix"), response_type=Resp)
            stream = await client.stream(SERVICE, "Greeter.Count", Req("u", count=3))
            assert len([m async for m in stream]) == 3
    finally:
        await client.close()
        await server.stop(grace=0)
    assert resp == Resp("hello unix")


def _tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "micro test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.mark.parametrize("over", ["tcp", "unix"])
async def test_tls_with_a_private_ca(tmp_path: Path, over: str) -> None:
    ca_file, cert_file, key_file = _tls_files(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cafile=str(ca_file))

    server = WatchedServer(ssl=server_ctx)
    server.add(SERVICE, endpoints_of(Greeter(Probe())))
    bound = await server.start("127.0.0.1:0" if over == "tcp" else f"unix:{tmp_path}/t.sock")
    address = str(bound)
    assert address.startswith("tls://127.0.0.1:" if over == "tcp" else "tls://unix:")
    client = Client(proxy=address, pool=Pool(ssl=client_ctx))
    stranger = Client(proxy=address)  # trusts only the system's CAs
    try:
        async with asyncio.timeout(BOUND):
            resp = await client.call(SERVICE, "Greeter.Hello", Req("tls"), response_type=Resp)
            stream = await client.stream(SERVICE, "Greeter.Count", Req("t", count=3))
            assert len([m async for m in stream]) == 3
            (conn,) = server.accepted
            assert conn.transport is not None
            assert conn.transport.get_extra_info("ssl_object") is not None
            with pytest.raises(errors.ConnectionError):
                await stranger.call(SERVICE, "Greeter.Hello", Req("x"))
    finally:
        await client.close()
        await stranger.close()
        await server.stop(grace=0)
    assert resp == Resp("hello tls")


async def test_observers_are_told_of_each_call_in_order_with_its_outcome(
    greeter: Greeter,
) -> None:
    told: list[tuple[Any, ...]] = []

    class Watch:
        def __init__(self, name: str) -> None:
            self.name = name

        def begin(self, call: Any) -> str:
            told.append(("begin", self.name, call.endpoint))
            return self.name

        def end(self, call: Any, begun: str, error: BaseException | None) -> None:
            told.append(("end", begun, type(error).__name__ if error else None))

    server = Server(observers=[Watch("a"), Watch("b"), Watch("c")])
    server.add(SERVICE, endpoints_of(greeter))
    client = Client(proxy=str(await server.start("127.0.0.1:0")), timeout=BOUND)
    try:
        await client.call(SERVICE, "Greeter.Hello", Req("x"))
        with pytest.raises(errors.MicroError):
            await client.call(SERVICE, "Greeter.Broken", Req("x"))
    finally:
        await client.close()
        await server.stop(grace=0)
    first, second = told[:6], told[6:]
    assert first == [
        ("begin", "a", "Greeter.Hello"),
        ("begin", "b", "Greeter.Hello"),
        ("begin", "c", "Greeter.Hello"),
        ("end", "c", None),
        ("end", "b", None),
        ("end", "a", None),
    ]
    assert second[3:] == [("end", name, "ValueError") for name in "cba"]
