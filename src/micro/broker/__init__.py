"""The broker block: ephemeral publish/subscribe, partitioned by namespace.

In a service, with no set-up::

    await micro.broker.publish("orders.created", Order(id=1))     # JSON via msgspec
    async with micro.broker.subscribe("orders.created") as sub:
        async for message in sub: ...

    @service.subscribe("orders.created", queue="billing")
    async def on_order(order: Order) -> None: ...

Implementations, picked by ``MICRO_BROKER``: ``memory`` (embedded default), ``nats``,
``redis``, and ``rpc`` (the client of the ``broker`` service).
"""

from micro.broker.base import Broker, Message, Subscriber
from micro.broker.default import default, encode, publish, set_default, subscribe
from micro.broker.subscriber import SubscriberSpec, run_subscribers, subscriber

__all__ = [
    "Broker",
    "Message",
    "Subscriber",
    "SubscriberSpec",
    "default",
    "encode",
    "publish",
    "run_subscribers",
    "set_default",
    "subscribe",
    "subscriber",
]
