"""Endpoints from a service's own handler module, without a server: what the service
would publish in the registry, for :func:`micro.codegen.client.render`.

``micro gen client orders --from services/orders/handler.py`` reads the handler classes
of that file (each class defined there with a public ``async def``; ``path:Class`` picks
one) and describes their endpoints exactly as :class:`micro.Service` registers them, so
a client generated from the module equals one generated from the running service.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from micro.registry.base import Endpoint
from micro.rpc.endpoint import endpoints_of

__all__ = ["endpoints_from", "load_module"]


def load_module(path: Path) -> ModuleType:
    """Import the file at ``path`` as a module, with its folder on ``sys.path`` (a handler
    imports its sibling modules); ``ValueError`` when it cannot be imported."""
    path = path.resolve()
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = f"_micro_gen_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # whatever the module raised is the reason to show
        raise ValueError(f"cannot import {path}: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(path.parent))
    return module


def endpoints_from(module: ModuleType, only: str | None = None) -> list[Endpoint]:
    """The registry records of the endpoints of the module's handler classes (or of the
    class named ``only``); ``ValueError`` when there is none."""
    from micro.service import describe_endpoints

    classes = [
        cls
        for name, cls in vars(module).items()
        if inspect.isclass(cls)
        and cls.__module__ == module.__name__
        and (only is None or name == only)
        and _has_endpoints(cls)
    ]
    if not classes:
        what = f"no class {only!r} with endpoints" if only else "no handler class"
        raise ValueError(f"{module.__file__}: {what} (a class with a public 'async def')")
    found = []
    for cls in classes:
        # The class is read, not run: an instance made without __init__ is enough to
        # see its methods, whatever its constructor needs.
        found.extend(endpoints_of(cls.__new__(cls)))
    return describe_endpoints(found)


def _has_endpoints(cls: type) -> bool:
    return any(
        not name.startswith("_")
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
        for name, member in vars(cls).items()
    )
