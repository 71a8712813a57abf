"""Code from endpoint schemas: typed clients (``micro gen client``).

:func:`~micro.codegen.client.render` writes a client module from registry records;
:func:`~micro.codegen.handlers.endpoints_from` makes those records from a handler module,
without a server.
"""

from micro.codegen.client import class_name, render
from micro.codegen.handlers import endpoints_from, load_module

__all__ = ["class_name", "endpoints_from", "load_module", "render"]
