"""Micro for Python: write a service in a few lines, run the whole platform with one command.

The names here are the framework's face::

    import micro

    class Helloworld:
        async def call(self, req: CallRequest) -> CallResponse:
            return CallResponse(msg=f"Hello {req.name}")

    service = micro.Service("helloworld")
    service.handle(Helloworld())
    service.run()

The building blocks are attributes of ``micro`` from the first line, typed for mypy and
usable anywhere (a script, a unit test) without a :class:`Service`: ``micro.store``,
``micro.config``, ``micro.events``, ``micro.broker``, ``micro.client``, ``micro.errors``,
``micro.log``, ``micro.registry``, ``micro.context``, ``micro.trace``. Outside a service they act through
the environment's server (``MICRO_PROXY``, or the current ``micro env``). Each is imported
on first use, so a service or ``micro --help`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import micro.broker as broker
    import micro.client as client
    import micro.config as config
    import micro.context as context
    import micro.errors as errors
    import micro.events as events
    import micro.log as log
    import micro.registry as registry
    import micro.store as store
    import micro.trace as trace
    from micro.rpc.endpoint import idempotent
    from micro.service import Service

__all__ = [
    "Service",
    "__version__",
    "broker",
    "client",
    "config",
    "context",
    "errors",
    "events",
    "idempotent",
    "log",
    "registry",
    "store",
    "trace",
]

_MODULES = frozenset(
    {
        "broker",
        "client",
        "config",
        "context",
        "errors",
        "events",
        "log",
        "registry",
        "store",
        "trace",
    }
)


def __getattr__(name: str) -> Any:
    if name == "Service":
        from micro.service import Service

        value: Any = Service
    elif name == "idempotent":
        from micro.rpc.endpoint import idempotent

        value = idempotent
    elif name in _MODULES:
        value = importlib.import_module(f"micro.{name}")
    else:
        raise AttributeError(f"module 'micro' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
