"""Micro for Python: write a service in a few lines, run the whole platform with one command.

The names here are the framework's face::

    import micro

    class Helloworld:
        async def call(self, req: CallRequest) -> CallResponse:
            return CallResponse(msg=f"Hello {req.name}")

    service = micro.Service("helloworld")
    service.handle(Helloworld())
    service.run()

Everything else (``micro.errors``, ``micro.client``, ``micro.config``, ``micro.registry``,
``micro.context``)
is imported on first use, so a service or ``micro --help`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import micro.client as client
    import micro.config as config
    import micro.context as context
    import micro.errors as errors
    import micro.registry as registry
    from micro.service import Service

__all__ = ["Service", "__version__", "client", "config", "context", "errors", "registry"]

_LAZY = {
    "Service": ("micro.service", "Service"),
    "client": ("micro.client", None),
    "config": ("micro.config", None),
    "context": ("micro.context", None),
    "errors": ("micro.errors", None),
    "registry": ("micro.registry", None),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'micro' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value
