"""The NATS JetStream event stream (nats-py): the scale-out stream many servers can share.

Layout, under a prefix (``micro`` by default; give each platform sharing a NATS its own):

* one JetStream stream **per topic**, named ``<prefix>__<namespace>__<topic>`` and holding
  the one subject ``<prefix>.<namespace>.<topic>`` (each name escaped to a single token:
  letters, digits and ``-`` stay, every other byte becomes ``_XX``). The stream's own
  sequence is so exactly the topic's 1-based sequence, and retention (``max_age``,
  ``max_events``) is the stream's ``max_age`` / ``max_msgs`` (JetStream ages events by
  when the server stored them);
* an event's id, timestamp and metadata are the headers ``Micro-Id``, ``Micro-Time`` and
  ``Micro-Metadata`` (JSON) (not ``Nats-Msg-Id``: the server's duplicate tracking cost a
  fifth of the publish rate, and our ids are fresh for every publish anyway);
* a named group is a durable pull consumer named after the group, shared by all of its
  members; ``group=None`` is an ephemeral pull consumer deleted on :meth:`stop` (or by the
  server once idle). Consumers ack explicitly; ``auto_ack`` acks as :meth:`next` hands an
  event out. ``ack_wait`` is the consumer's ack wait, a nack is a NAK (redelivered at
  once);
* dead letters: a consumer has no ``max_deliver`` (the server would drop the event
  silently); instead a delivery past ``retry_limit`` redeliveries (a NAK on the last
  allowed attempt, or the redelivery after its ack wait ran out) is published to
  ``<topic>.dead`` (metadata ``micro-topic`` / ``micro-sequence`` added) and then acked;
* offsets: a sequence is ``DeliverPolicy.BY_START_SEQUENCE``; a time is the first event
  whose ``Micro-Time`` is at or after it, found by a binary search with direct gets
  (timestamps are taken to grow with the sequence, as they do unless publishers set
  them); a new group without an offset is ``DeliverPolicy.NEW``.

nats-py is imported only here (the ``nats`` extra); its exceptions never reach a caller:
:meth:`NatsStream._failure` is the one place they become ours.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from micro import errors
from micro.events._checks import (
    check_consume,
    check_group,
    check_limit,
    check_namespace,
    check_offset,
    check_payload,
    check_topic,
    offset_time,
)
from micro.events.base import Consumer, Event, Group, Offset, Stream
from micro.store._backend import redact

try:
    import nats
    import nats.errors as nats_errors
    import nats.js.errors as js_errors
    from nats.js import api
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the nats event stream needs nats-py: pip install 'micro-python[nats]'"
    ) from exc

if TYPE_CHECKING:
    from micro.settings import Settings

from micro.events._nats_consumer import (
    _BACKEND_ERRORS,
    _ID,
    _META,
    _TIME,
    _event,
    _NatsConsumer,
    _short,
    _token,
    _untoken,
    group_config,
)

__all__ = ["NatsStream"]


def _group_name(durable: str) -> str:
    """The group a durable consumer is named after (as is, if its name was shortened)."""
    try:
        return _untoken(durable)
    except (ValueError, UnicodeDecodeError):
        return durable


T = TypeVar("T")

log = logging.getLogger("micro.events")


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


class NatsStream(Stream):
    """Events in NATS JetStream at ``address`` (``nats://[user:pass@]host:4222``).

    ``prefix`` starts every subject and stream name; ``max_age`` (seconds) and
    ``max_events`` bound each topic; ``replicas`` and ``storage`` (``file`` or
    ``memory``) configure the streams made; ``batch`` is how many events a consumer pulls
    at once; ``connect_timeout`` and ``timeout`` bound a connection and a request.
    """

    name = "nats"

    def __init__(
        self,
        address: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "micro",
        max_age: float | None = None,
        max_events: int | None = None,
        replicas: int = 1,
        storage: str = "file",
        batch: int = 256,
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        if not prefix or any(c in prefix for c in " \t\r\n.*>"):
            raise ValueError(f"invalid NATS prefix {prefix!r}")
        if storage not in ("file", "memory"):
            raise ValueError(f"storage is 'file' or 'memory', not {storage!r}")
        self.address = address
        self.prefix = prefix
        self.max_age = max_age
        self.max_events = max_events
        self._replicas = replicas
        self._storage = api.StorageType.FILE if storage == "file" else api.StorageType.MEMORY
        self._batch = batch
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._nc: Any = None
        self._js: Any = None
        self._jsm: Any = None
        self._opening: asyncio.Lock | None = None
        self._waiting: dict[asyncio.Task[Any], bool] = {}
        """Tasks awaiting an answer from NATS (see :meth:`_answer`)."""
        self._closed = False
        self._streams: set[str] = set()
        self._consumers: set[_NatsConsumer] = set()
        self._ptoken = _token(prefix)

    @classmethod
    def from_settings(cls, settings: Settings) -> NatsStream:
        """The server's stream, at ``MICRO_EVENTS_ADDRESS`` (prefix ``MICRO_PREFIX``)."""
        address = settings.events_address
        if not address or not address.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError(
                "the nats event stream needs MICRO_EVENTS_ADDRESS=nats://host:4222"
                + (f" (got {redact(address)!r})" if address else "")
            )
        return cls(address, prefix=settings.backend_prefix)

    def __repr__(self) -> str:
        return f"NatsStream({redact(self.address)!r}, prefix={self.prefix!r})"

    # ------------------------------------------------------------------ names and errors

    def _subject(self, namespace: str, topic: str) -> str:
        return f"{self._ptoken}.{_token(namespace)}.{_token(topic)}"

    def _stream_name(self, namespace: str, topic: str) -> str:
        return _short(f"{self._ptoken}__{_token(namespace)}__{_token(topic)}")

    def _failure(self, exc: BaseException) -> errors.MicroError:
        """The one place a nats-py or socket error becomes ours."""
        if isinstance(exc, errors.MicroError):
            return exc
        where = f"NATS JetStream at {redact(self.address)}"
        if isinstance(exc, ConnectionRefusedError):
            return errors.ServiceUnavailable(
                "events", f"{where} is not reachable: connection refused"
            )
        if isinstance(exc, nats_errors.NoServersError | OSError):
            return errors.ServiceUnavailable("events", f"{where} is not reachable: {exc}")
        if isinstance(exc, nats_errors.ConnectionClosedError | nats_errors.StaleConnectionError):
            return errors.ServiceUnavailable("events", f"{where}: the connection is closed")
        if isinstance(exc, js_errors.NoStreamResponseError | nats_errors.NoRespondersError):
            return errors.ServiceUnavailable("events", f"{where} has no JetStream answering: {exc}")
        if isinstance(exc, js_errors.ServiceUnavailableError):
            return errors.ServiceUnavailable("events", f"{where} is unavailable: {exc}")
        if isinstance(exc, nats_errors.TimeoutError | TimeoutError | asyncio.TimeoutError):
            return errors.ServiceUnavailable("events", f"{where} did not answer in time")
        if isinstance(exc, js_errors.APIError) and exc.err_code in (10023, 10047, 10028):
            # insufficient resources, storage limits, account limits
            return errors.ServiceUnavailable("events", f"{where} cannot take events now: {exc}")
        return errors.InternalServerError("events", f"{where} failed: {exc}")

    # ------------------------------------------------------------------ connections

    async def _connect(self) -> Any:
        """JetStream, connecting first if need be. While a lost connection is being
        re-made this fails at once: nats-py would buffer the request and send it once
        reconnected, so a publish would time out for its caller (an error) and yet be
        stored later, and every call would hang for the whole timeout."""
        if self._js is not None:
            if not self._nc.is_connected:
                raise errors.ServiceUnavailable(
                    "events",
                    f"NATS JetStream at {redact(self.address)} is not reachable: "
                    "lost the connection, reconnecting",
                )
            return self._js
        if self._closed:
            raise errors.ServiceUnavailable("events", f"{self!r} is closed")
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._js is None:
                last: list[Exception] = []

                async def on_error(exc: Exception) -> None:
                    last[:] = [exc]
                    log.debug("NATS %s: %s", redact(self.address), exc)

                async def on_disconnect() -> None:
                    log.info("NATS events: disconnected from %s", redact(self.address))
                    for task in self._waiting:
                        if not self._waiting[task]:
                            self._waiting[task] = True
                            task.cancel()

                async def on_reconnect() -> None:
                    log.info("NATS events: reconnected to %s", redact(self.address))

                try:
                    # One quick retry for the first connection (a server that is down
                    # fails at once); once connected, reconnect for ever.
                    nc = await nats.connect(
                        self.address,
                        connect_timeout=self._connect_timeout,
                        max_reconnect_attempts=1,
                        reconnect_time_wait=0.1,
                        error_cb=on_error,
                        disconnected_cb=on_disconnect,
                        reconnected_cb=on_reconnect,
                        name=f"micro-events/{self.prefix}",
                    )
                except _BACKEND_ERRORS as exc:
                    cause = last[0] if last and isinstance(exc, nats_errors.NoServersError) else exc
                    raise self._failure(cause) from exc
                except Exception as exc:  # nats-py raises plain errors for a bad URL
                    raise errors.ServiceUnavailable(
                        "events", f"cannot connect to NATS at {redact(self.address)}: {exc}"
                    ) from exc
                nc.options["max_reconnect_attempts"] = -1
                nc.options["reconnect_time_wait"] = 0.5
                self._nc = nc
                self._jsm = nc.jsm(timeout=self._timeout)
                self._js = nc.jetstream(timeout=self._timeout)
        return self._js

    async def _answer(self, doing: str, request: Awaitable[T]) -> T:
        """Await a request to NATS, failing it at once, naming NATS, if the connection
        drops before the answer comes. nats-py would let it wait out its whole timeout
        (as long as the caller's own deadline, so the caller would only learn that its
        call timed out), though no answer can come on a dead connection."""
        task = asyncio.current_task()
        if task is None:
            return await request
        self._waiting[task] = False  # set True (and the task cancelled) on a drop
        try:
            return await request
        except asyncio.CancelledError:
            if self._waiting.get(task) and task.uncancel() == 0:
                raise errors.ServiceUnavailable(
                    "events",
                    f"NATS JetStream at {redact(self.address)} is not reachable: lost the "
                    f"connection while {doing}",
                ) from None
            raise
        finally:
            self._waiting.pop(task, None)

    async def close(self) -> None:
        """Stop every consumer and close the connection."""
        self._closed = True
        for consumer in list(self._consumers):
            await consumer.stop()
        nc, self._nc, self._js, self._jsm = self._nc, None, None, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await fn()
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc

    async def _ensure(self, namespace: str, topic: str) -> str:
        """The topic's stream, made (or brought to this stream's retention) if needed."""
        name = self._stream_name(namespace, topic)
        await self._connect()
        if name in self._streams:
            return name
        config = api.StreamConfig(
            name=name,
            subjects=[self._subject(namespace, topic)],
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            storage=self._storage,
            num_replicas=self._replicas,
            max_age=self.max_age or None,
            max_msgs=self.max_events or None,
            duplicate_window=min(120.0, self.max_age) if self.max_age else 120.0,
            description=f"micro events: namespace {namespace}, topic {topic}",
        )
        try:
            try:
                await self._jsm.add_stream(config)
            except js_errors.BadRequestError as exc:
                if exc.err_code != 10058:  # in use with another configuration: ours changed
                    raise
                await self._jsm.update_stream(config)
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        self._streams.add(name)
        return name

    async def _info(self, name: str) -> Any:
        """The stream's info, None when there is none."""
        await self._connect()
        try:
            return await self._answer("reading the topic", self._jsm.stream_info(name))
        except js_errors.NotFoundError:
            self._streams.discard(name)
            return None
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc

    # ------------------------------------------------------------------ the stream

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        metadata: dict[str, str] | None = None,
        timestamp: float | None = None,
        namespace: str = "micro",
    ) -> Event:
        check_topic(topic)
        check_namespace(namespace)
        check_payload(payload)
        return await self._append(
            namespace,
            topic,
            bytes(payload),
            dict(metadata or {}),
            time.time() if timestamp is None else float(timestamp),
        )

    async def _append(
        self, namespace: str, topic: str, payload: bytes, metadata: dict[str, str], ts: float
    ) -> Event:
        event_id = str(uuid.uuid4())
        headers = {_ID: event_id, _TIME: repr(ts)}
        if metadata:
            headers[_META] = json.dumps(metadata, separators=(",", ":"))
        subject = self._subject(namespace, topic)
        for attempt in (1, 2):
            name = await self._ensure(namespace, topic)
            try:
                # A publish whose connection drops may still have been stored: the
                # caller learns at once that the outcome is unknown.
                ack = await self._answer(
                    "publishing (the event may have been stored)",
                    self._js.publish(subject, payload, headers=headers),
                )
            except (js_errors.NoStreamResponseError, nats_errors.NoRespondersError) as exc:
                self._streams.discard(name)  # deleted meanwhile: make it again, once
                if attempt == 2:
                    raise self._failure(exc) from exc
                continue
            except js_errors.NotFoundError as exc:
                self._streams.discard(name)
                if attempt == 2:
                    raise self._failure(exc) from exc
                continue
            except _BACKEND_ERRORS as exc:
                raise self._failure(exc) from exc
            return Event(
                id=event_id,
                topic=topic,
                sequence=ack.seq,
                timestamp=ts,
                payload=payload,
                metadata=metadata,
            )
        raise AssertionError("unreachable")

    def consume(
        self,
        topic: str,
        *,
        group: str | None = None,
        offset: Offset | None = None,
        auto_ack: bool = True,
        ack_wait: float = 30.0,
        retry_limit: int | None = None,
        namespace: str = "micro",
    ) -> Consumer:
        check_consume(topic, group, offset, ack_wait, retry_limit, namespace)
        if self._closed:
            raise errors.ServiceUnavailable("events", f"{self!r} is closed")
        consumer = _NatsConsumer(
            self, namespace, topic, group, offset, auto_ack, ack_wait, retry_limit
        )
        self._consumers.add(consumer)
        return consumer

    async def read(
        self,
        topic: str,
        *,
        limit: int = 250,
        offset: Offset | None = None,
        namespace: str = "micro",
    ) -> builtins.list[Event]:
        check_topic(topic)
        check_namespace(namespace)
        check_limit(limit)
        check_offset(offset)
        name = self._stream_name(namespace, topic)
        info = await self._info(name)
        if info is None or not info.state.messages:
            return []
        start = await self._start(name, info, offset)
        if start is None or start > info.state.last_seq:
            return []
        start = max(start, info.state.first_seq)
        want = limit or info.state.last_seq - start + 1
        config = api.ConsumerConfig(
            name=f"r{uuid.uuid4().hex}",
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=api.AckPolicy.NONE,
            filter_subject=self._subject(namespace, topic),
            inactive_threshold=max(self._timeout, 5.0),
            mem_storage=True,
            num_replicas=1,
        )
        events: builtins.list[Event] = []
        try:
            made = await self._jsm.add_consumer(name, config)
            try:
                sub = await self._js.pull_subscribe_bind(
                    consumer=made.name, stream=name, pending_msgs_limit=-1
                )
                try:
                    pending = made.num_pending
                    while len(events) < want and pending:
                        msgs = await sub.fetch(min(want - len(events), 1024), self._timeout)
                        for msg in msgs:
                            events.append(_event(topic, msg))
                            pending = msg.metadata.num_pending
                finally:
                    with contextlib.suppress(*_BACKEND_ERRORS):
                        await sub.unsubscribe()
            finally:
                with contextlib.suppress(*_BACKEND_ERRORS, js_errors.NotFoundError):
                    await self._jsm.delete_consumer(name, made.name)
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        return events[:want]

    async def _start(self, name: str, info: Any, offset: Offset | None) -> int | None:
        """The first sequence at ``offset`` (None: past the end)."""
        first: int = info.state.first_seq
        last: int = info.state.last_seq
        if offset is None:
            return first
        if isinstance(offset, int):
            return max(offset, 1)
        at = offset_time(offset)
        # binary search: the first sequence whose event time is >= at (retention trims
        # only the head, so first..last are all there; one gone meanwhile counts as older)
        lo, hi = first, last + 1
        while lo < hi:
            mid = (lo + hi) // 2
            ts = await self._time_at(name, mid)
            if ts is None or ts < at:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo <= last else None

    async def _time_at(self, name: str, seq: int) -> float | None:
        """The event time of the event ``seq`` (None: not there)."""
        try:
            msg = await self._jsm.get_msg(name, seq)
        except js_errors.NotFoundError:
            return None
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        return float((msg.headers or {}).get(_TIME) or 0.0)

    async def topics(self, *, namespace: str = "micro") -> builtins.list[str]:
        check_namespace(namespace)
        names = []
        for info in await self._list(f"{self._ptoken}.{_token(namespace)}.*"):
            if not info.get("state", {}).get("messages"):
                continue
            for subject in info.get("config", {}).get("subjects") or ():
                names.append(_untoken(subject.split(".", 2)[2]))
        return sorted(names)

    async def _list(self, subject: str) -> builtins.list[dict[str, Any]]:
        """The infos (raw JSON) of the streams holding subjects that match ``subject``."""
        await self._connect()
        found: builtins.list[dict[str, Any]] = []
        offset = 0
        try:
            while True:
                resp = await self._nc.request(
                    "$JS.API.STREAM.LIST",
                    json.dumps({"offset": offset, "subject": subject}).encode(),
                    timeout=self._timeout,
                )
                data = json.loads(resp.data)
                if "error" in data:
                    raise errors.InternalServerError(
                        "events", f"NATS at {redact(self.address)}: {data['error']}"
                    )
                streams = data.get("streams") or []
                found += streams
                offset += len(streams)
                if not streams or offset >= data.get("total", 0):
                    return found
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc

    async def groups(self, topic: str, *, namespace: str = "micro") -> builtins.list[Group]:
        check_topic(topic)
        check_namespace(namespace)
        name = self._stream_name(namespace, topic)
        if await self._info(name) is None:
            return []
        try:
            infos = await self._answer("listing the groups", self._jsm.consumers_info(name))
        except js_errors.NotFoundError:
            return []
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        found = [
            Group(
                _group_name(info.config.durable_name),
                info.delivered.stream_seq + 1,
                info.num_ack_pending or 0,
                info.num_pending or 0,
            )
            for info in infos
            if info.config.durable_name  # a group of one (or a read) is ephemeral
        ]
        return sorted(found, key=lambda g: g.group)

    async def reset(
        self, topic: str, group: str, *, offset: Offset | None, namespace: str = "micro"
    ) -> Group:
        """A durable consumer's start cannot change: it is deleted and made again with the
        same settings at the new start (members bound to it set up again on their own)."""
        check_topic(topic)
        check_group(group)
        check_namespace(namespace)
        check_offset(offset)
        name = await self._ensure(namespace, topic)
        durable = _short(_token(group))
        start = None
        if offset is not None:
            info = await self._info(name)
            start = None if info is None else await self._start(name, info, offset)
        try:
            try:
                config = (await self._jsm.consumer_info(name, durable)).config
                await self._jsm.delete_consumer(name, durable)
            except js_errors.NotFoundError:
                config = group_config(durable, self._subject(namespace, topic), 30.0)
            config.opt_start_time = None
            if start is None:
                config.deliver_policy, config.opt_start_seq = api.DeliverPolicy.NEW, None
            else:
                config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = start
            await self._jsm.add_consumer(name, config)
        except _BACKEND_ERRORS as exc:
            raise self._failure(exc) from exc
        [moved] = [g for g in await self.groups(topic, namespace=namespace) if g.group == group]
        return moved

    async def delete_all(self) -> int:
        """Delete every stream of this prefix (all namespaces, topics, groups); how many."""
        infos = await self._list(f"{self._ptoken}.>")
        for info in infos:
            name = info["config"]["name"]
            with contextlib.suppress(js_errors.NotFoundError):
                await self._call(functools.partial(self._jsm.delete_stream, name))
            self._streams.discard(name)
        return len(infos)
