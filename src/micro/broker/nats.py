"""The NATS broker (nats-py, core NATS): the scale-out broker. Queue groups are NATS's own.

A topic of a namespace is the subject ``<prefix>.<namespace>.<topic>``, its names made
safe for a subject token: ``.`` becomes ``~`` and any character other than letters,
digits, ``_ - /`` becomes ``%XX`` per UTF-8 byte (so the mapping is one to one and a topic
is always one token: no wildcard, no empty token). Message headers travel as NATS headers.

nats-py is imported only here (the ``nats`` extra); its exceptions never reach a caller:
:meth:`NatsBroker._failure` is the one place they become ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from micro import errors
from micro.broker._backend import MAX_PENDING, FeedSubscriber, check_queue, check_topic
from micro.broker.base import Broker, Message, Subscriber
from micro.store._backend import redact

try:
    import nats
    import nats.errors as nats_errors
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the nats broker needs nats-py: pip install 'micro-python[nats]'") from exc

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription as NatsSubscription

    from micro.settings import Settings

__all__ = ["NatsBroker", "subject_token"]

log = logging.getLogger("micro.broker")

_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-/")


def subject_token(name: str) -> str:
    """``name`` as one NATS subject token, one to one (see the module's doc)."""
    out: list[str] = []
    for c in name:
        if c in _SAFE:
            out.append(c)
        elif c == ".":
            out.append("~")
        else:
            out.extend(f"%{b:02X}" for b in c.encode())
    return "".join(out)


class _NatsSubscriber(FeedSubscriber):
    def __init__(
        self, broker: NatsBroker, subject: str, topic: str, queue: str | None, limit: int
    ) -> None:
        super().__init__(topic, queue, limit=limit)
        self._broker = broker
        self._subject = subject
        self._sub: NatsSubscription | None = None

    async def _open(self) -> None:
        feed = self.feed

        async def deliver(msg: Msg) -> None:
            feed.push(Message(dict(msg.headers) if msg.headers else {}, msg.data))

        nc = await self._broker._connection()
        queue = subject_token(self.queue) if self.queue else ""
        try:
            self._sub = await nc.subscribe(self._subject, queue=queue, cb=deliver)
            await nc.flush()  # the server has the subscription: it is in place
        except Exception as exc:
            raise self._broker._failure(exc) from None
        self._broker._subscribers.add(self)

    async def _close(self) -> None:
        self._broker._subscribers.discard(self)
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # closed connection: nothing left to undo
                log.debug("unsubscribe from %s: %s", self._subject, exc)


class NatsBroker(Broker):
    """Publish/subscribe through the NATS server at ``address`` (``nats://host:4222``).

    ``prefix`` starts every subject (give each broker sharing a NATS its own, as tests
    do); ``connect_timeout`` bounds a connection attempt.
    """

    name = "nats"

    def __init__(
        self,
        address: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "micro",
        connect_timeout: float = 5.0,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"invalid NATS subject prefix {prefix!r}: tokens of letters, digits, '_', '-'"
            )
        self.address = address
        self.prefix = prefix
        self._connect_timeout = connect_timeout
        self._max_pending = max_pending
        self._nc: NatsClient | None = None
        self._lock = asyncio.Lock()
        self._subscribers: set[_NatsSubscriber] = set()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> NatsBroker:
        """The server's broker, at ``MICRO_BROKER_ADDRESS`` (default ``nats://127.0.0.1:4222``).

        Its subjects start ``<MICRO_PREFIX>.broker``: under the platform's prefix, so
        platforms sharing a NATS do not hear each other, and apart from the event
        stream's ``<MICRO_PREFIX>.<namespace>.<topic>``, which a broker message to a topic
        of the same name would otherwise land in, as a stored event.
        """
        address = settings.broker_address or "nats://127.0.0.1:4222"
        if not address.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError(
                f"the nats broker needs MICRO_BROKER_ADDRESS=nats://host:4222 (got {redact(address)!r})"
            )
        return cls(address, prefix=f"{settings.backend_prefix}.broker")

    def __repr__(self) -> str:
        return f"NatsBroker({redact(self.address)!r}, prefix={self.prefix!r})"

    def subject(self, topic: str, namespace: str) -> str:
        """The NATS subject of ``topic`` in ``namespace``."""
        return f"{self.prefix}.{subject_token(namespace)}.{subject_token(topic)}"

    def _failure(self, exc: BaseException) -> errors.MicroError:
        """The one place a nats-py or socket error becomes ours."""
        if isinstance(exc, errors.MicroError):
            return exc
        where = f"NATS broker at {redact(self.address)}"
        if isinstance(exc, nats_errors.MaxPayloadError):
            return errors.PayloadTooLarge("broker", f"message too large for {where}: {exc}")
        if isinstance(exc, nats_errors.AuthorizationError):
            return errors.ServiceUnavailable("broker", f"{where} refused our credentials: {exc}")
        if isinstance(
            exc,
            nats_errors.NoServersError
            | nats_errors.ConnectionClosedError
            | nats_errors.StaleConnectionError
            | nats_errors.ConnectionReconnectingError
            | OSError,
        ):
            return errors.ServiceUnavailable(
                "broker", f"{where} is unreachable: {exc or type(exc).__name__}"
            )
        if isinstance(exc, TimeoutError):
            return errors.ServiceUnavailable("broker", f"{where} timed out: {exc or 'timeout'}")
        return errors.InternalServerError("broker", f"{where}: {type(exc).__name__}: {exc}")

    async def _connection(self) -> NatsClient:
        """The connection, made first if need be. While a lost one is being re-made this
        fails at once: nats-py would buffer a publish and send it once reconnected, so
        a message said to be sent while NATS was away would arrive after it came back,
        to subscribers of that later moment, and a subscribe would wait out its flush."""
        nc = self._nc
        if nc is not None and not nc.is_closed:
            if not nc.is_connected:
                raise errors.ServiceUnavailable(
                    "broker",
                    f"NATS broker at {redact(self.address)} is unreachable: "
                    "lost the connection, reconnecting",
                )
            return nc
        if self._closed:
            raise errors.ServiceUnavailable("broker", "the NATS broker is closed")
        async with self._lock:
            if self._nc is None or self._nc.is_closed:

                async def quiet(exc: Exception) -> None:
                    log.debug("NATS broker at %s: %s", redact(self.address), exc)

                async def closed() -> None:
                    # Reconnecting gave up: subscriptions would wait forever; end them.
                    lost = errors.ServiceUnavailable(
                        "broker", f"lost the NATS broker at {redact(self.address)}"
                    )
                    for sub in list(self._subscribers):
                        sub.feed.end(lost)

                try:
                    await self._probe()
                    async with asyncio.timeout(self._connect_timeout * 3):
                        self._nc = await nats.connect(
                            self.address,
                            connect_timeout=int(max(self._connect_timeout, 1)),
                            allow_reconnect=True,
                            max_reconnect_attempts=60,  # about a minute: rides out a restart
                            reconnect_time_wait=1,
                            error_cb=quiet,
                            closed_cb=closed,
                            name=f"micro-broker/{self.prefix}",
                        )
                except BaseException as exc:
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    raise self._failure(exc) from None
            return self._nc

    async def _probe(self) -> None:
        """Fail fast when nothing listens at the address (nats-py would keep retrying
        the first connection for as long as it retries a lost one)."""
        parts = urlsplit(self.address)
        if parts.scheme not in ("nats", "tls"):
            return
        host, port = parts.hostname or "127.0.0.1", parts.port or 4222
        async with asyncio.timeout(self._connect_timeout):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def publish(self, topic: str, message: Message, *, namespace: str = "micro") -> None:
        check_topic(topic)
        nc = await self._connection()
        headers: dict[str, Any] | None = dict(message.header) if message.header else None
        try:
            await nc.publish(self.subject(topic, namespace), message.body, headers=headers)
        except Exception as exc:
            raise self._failure(exc) from None

    def subscribe(
        self, topic: str, *, queue: str | None = None, namespace: str = "micro"
    ) -> Subscriber:
        check_topic(topic)
        return _NatsSubscriber(
            self, self.subject(topic, namespace), topic, check_queue(queue), self._max_pending
        )

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._subscribers):
            sub.feed.end()
            await sub.stop()
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.close()
            except Exception as exc:
                log.debug("closing the NATS connection: %s", exc)
