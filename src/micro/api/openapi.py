"""``GET /openapi.json``: an OpenAPI 3.1 document of every endpoint a namespace has,
built from the JSON Schemas its services registered, so any OpenAPI tool can call them.

Each endpoint ``H.M`` of service ``s`` is ``POST /s/H/M`` with the request schema as its
JSON body and the response schema as its 200 answer; errors are Micro's error JSON.
Nested types (``$defs``) become components named ``<service>.<Type>``, so two services'
``CallRequest`` never clash. A server stream answers JSON lines (``application/x-ndjson``);
client and bidi streams need a WebSocket, which OpenAPI cannot describe, so they are left
out.

Who may read a namespace's document is who may list its services: the gateway makes the
``Registry.ListServices`` call as its caller (through the door, to the registry's handler),
and documents the services that call answers, else answers its 401 or 403. The document is
cached per namespace (within a budget of bytes) until the registry changes.
"""

from __future__ import annotations

import copy
from typing import Any, Final

import msgspec

from micro import errors
from micro._bounded import BoundedDict
from micro.routing import Route, RouteTable

__all__ = ["LIST_SERVICES", "OpenAPI", "document", "service_names"]

LIST_SERVICES: Final = "Registry.ListServices"
"""The registry's endpoint whose access decides who may read a namespace's document."""

_ERROR: Final = {
    "type": "object",
    "description": "Micro's error: the HTTP status is its code.",
    "properties": {
        "id": {"type": "string"},
        "code": {"type": "integer"},
        "detail": {"type": "string"},
        "status": {"type": "string"},
    },
    "required": ["id", "code", "detail", "status"],
}
_ERROR_REF: Final = {"$ref": "#/components/schemas/MicroError"}
_CACHE_BYTES: Final = 32 * 1024 * 1024
"""What the cached documents of all namespaces may take."""


def _rewrite(node: Any, prefix: str) -> Any:
    """``#/$defs/X`` references become ``#/components/schemas/<prefix>X``."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + prefix + value[len("#/$defs/") :]
            elif key != "$defs":
                out[key] = _rewrite(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite(item, prefix) for item in node]
    return node


def _schema(schema: dict[str, Any], prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    for name, sub in schema.get("$defs", {}).items():
        components.setdefault(prefix + name, _rewrite(sub, prefix))
    rewritten: dict[str, Any] = _rewrite(schema, prefix) if schema else {}
    return rewritten


def _operation(route: Route, name: str, components: dict[str, Any]) -> dict[str, Any] | None:
    info = route.endpoints[name]
    if info.kind in ("client", "bidi"):
        return None
    prefix = f"{route.service}."
    request = _schema(copy.deepcopy(info.request), prefix, components)
    response = _schema(copy.deepcopy(info.response), prefix, components)
    answer_type = "application/x-ndjson" if info.kind == "server" else "application/json"
    operation: dict[str, Any] = {
        "operationId": f"{route.service}.{name}",
        "tags": [route.service],
        "requestBody": {"required": False, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {"description": "The answer", "content": {answer_type: {"schema": response}}},
            "default": {
                "description": "An error",
                "content": {"application/json": {"schema": _ERROR_REF}},
            },
        },
    }
    summary = info.metadata.get("description")
    if summary:
        operation["summary"] = summary
    return operation


def document(routes: list[Route], version: str) -> dict[str, Any]:
    """The OpenAPI document of these services."""
    components: dict[str, Any] = {"MicroError": _ERROR}
    paths: dict[str, Any] = {}
    for route in sorted(routes, key=lambda r: r.service):
        for name in sorted(route.endpoints):
            handler, _, method = name.partition(".")
            operation = _operation(route, name, components)
            if operation is not None:
                paths[f"/{route.service}/{handler}/{method}"] = {"post": operation}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Micro API", "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }


class _Named(msgspec.Struct):
    name: str


class _Listed(msgspec.Struct):
    services: list[_Named] = []


_decode_listed = msgspec.json.Decoder(_Listed).decode


def service_names(listed: bytes) -> list[str]:
    """The names in the JSON answer of :data:`LIST_SERVICES` (502 when it is none)."""
    try:
        return [service.name for service in _decode_listed(listed).services]
    except msgspec.DecodeError as exc:
        raise errors.BadGateway("micro.api", f"unexpected list of services: {exc}") from None


class OpenAPI:
    """Builds and caches each namespace's document."""

    def __init__(self, routes: RouteTable, version: str = "1.0") -> None:
        self._routes = routes
        self._version = version
        self._cache: BoundedDict[str, tuple[int, tuple[str, ...], bytes]] = BoundedDict(
            _CACHE_BYTES
        )

    async def document(self, namespace: str, services: list[str]) -> bytes:
        """The document of ``services`` (what the caller may list) of the namespace, as
        JSON bytes."""
        generation = self._routes.generation
        names = tuple(sorted(set(services)))
        cached = self._cache.get(namespace)
        if cached is not None and cached[:2] == (generation, names):
            return cached[2]
        found: list[Route] = []
        for name in names:
            try:
                found.append(await self._routes.lookup(name, namespace))
            except errors.NotFound:
                continue  # gone meanwhile
        data = msgspec.json.encode(document(found, self._version))
        size = len(data) + len(namespace) + sum(len(name) for name in names)
        self._cache.set(namespace, (generation, names, data), size)
        return data
