"""The events block: durable, ordered topics with consumer groups, acks and replay.

In a service, with no set-up::

    await micro.events.publish("orders", Order(id=1))        # JSON via msgspec
    async with micro.events.consume("orders", group="billing", auto_ack=False) as c:
        async for delivery in c:
            ...
            await delivery.ack()

or ``@service.consume("orders", group="billing")`` on ``async def handle(order: Order)``.
A store write and its events committed together: :class:`Outbox` (the transactional outbox).
Implementations: ``sqlite`` (embedded default), ``memory``, ``nats``, ``redis``, and ``rpc``
(the client of the ``events`` service).
"""

from micro.events.base import (
    DEAD_LETTER_SUFFIX,
    Consumer,
    Delivery,
    Event,
    Group,
    Offset,
    Stream,
)
from micro.events.consumer import ConsumerSpec, consumer, run_consumers
from micro.events.default import consume, default, publish, read, set_default
from micro.events.outbox import Message, Outbox

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "Consumer",
    "ConsumerSpec",
    "Delivery",
    "Event",
    "Group",
    "Message",
    "Offset",
    "Outbox",
    "Stream",
    "consume",
    "consumer",
    "default",
    "publish",
    "read",
    "run_consumers",
    "set_default",
]
