"""``micro services`` and ``micro get service <name>``: what the registry knows.

Output follows Micro's (reference §3.2)::

    service  helloworld

    version latest

    ID                 Address          Metadata
    helloworld-1f2e…   127.0.0.1:40123  protocol=micro

    Endpoint: Helloworld.Call
    Request: {
        name string
    }
    Response: {
        msg string
    }
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from micro.cli._client import Session, run_with_client
from micro.cli._format import table
from micro.cli.errors import CliError
from micro.cli.main import MicroCommand, SubGroup

if TYPE_CHECKING:
    from micro.registry.base import Endpoint, Service

__all__ = ["format_service", "get", "services"]

_MAX_DEPTH = 6
"""How deep nested request fields are shown (as Micro's schema extraction)."""


@click.command("services", cls=MicroCommand)
def services() -> None:
    """List the services in the registry.

    Names of the current namespace's services, sorted, one per line.
    """

    async def body(session: Session) -> list[str]:
        from micro.registry.client import RPCRegistry

        found = await RPCRegistry(session.client).list_services(domain=session.namespace)
        return sorted({svc.name for svc in found})

    names = run_with_client(body)
    if names:
        click.echo("\n".join(names))


@click.group("get", cls=SubGroup)
def get() -> None:
    """Get a resource: a service's nodes and endpoints."""


@get.command("service")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def get_service(name: str, output: str) -> None:
    """Show a service's versions, nodes and endpoints."""
    found = run_with_client(lambda session: lookup(session, name))
    if output == "json":
        import msgspec

        click.echo(msgspec.json.format(msgspec.json.encode(found), indent=2).decode())
        return
    click.echo("\n".join(format_service(found)))


async def lookup(session: Session, name: str) -> list[Service]:
    """Every version of ``name`` in the current namespace (core services: in ``micro``);
    ``Service "<name>" not found`` (exit 4) when there is none."""
    from micro.rpc.client import CORE_SERVICES

    domains = [session.namespace]
    if name in CORE_SERVICES and session.namespace != "micro":
        domains.append("micro")
    found = await first_found(session, name, domains)
    if not found:
        raise CliError(f'Service "{name}" not found', 4)
    return found


async def first_found(session: Session, name: str, domains: list[str]) -> list[Service]:
    """Every version of ``name`` in the first of ``domains`` that has it (none: ``[]``)."""
    from micro import errors
    from micro.registry.client import RPCRegistry

    registry = RPCRegistry(session.client)
    for domain in domains:
        try:
            found = await registry.get_service(name, domain=domain)
        except errors.NotFound:
            continue
        if found:
            return found
    return []


# -- formatting ---------------------------------------------------------------------------


def format_service(found: list[Service]) -> list[str]:
    """Micro's ``get service`` text, as lines."""
    lines: list[str] = []
    for svc in found:
        if not lines:
            lines += [f"service  {svc.name}"]
        lines += ["", f"version {svc.version}", ""]
        rows: list[tuple[str, ...]] = [("ID", "Address", "Metadata")]
        rows += [(n.id, n.address, _pairs(n.metadata)) for n in svc.nodes]
        lines += table(rows)
        for endpoint in svc.endpoints:
            lines += ["", *format_endpoint(endpoint)]
    return lines


def format_endpoint(endpoint: Endpoint) -> list[str]:
    """``Endpoint: X``, its metadata, and the fields of its request and response."""
    lines = [f"Endpoint: {endpoint.name}"]
    if endpoint.metadata:
        lines.append(f"Metadata: {_pairs(endpoint.metadata)}")
    lines.append(f"Request: {_fields(endpoint.request)}")
    lines.append(f"Response: {_fields(endpoint.response)}")
    return lines


def _pairs(metadata: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(metadata.items()))


def _fields(schema: dict[str, Any]) -> str:
    """``{\\n\\tname string\\n}`` for an object schema; ``{}`` when it has no fields."""
    defs = schema.get("$defs", {})
    props = _properties(schema, defs)
    if not props:
        return "{}"
    return "{\n" + "".join(_field(k, v, defs, 0) for k, v in props.items()) + "}"


def _field(name: str, schema: Any, defs: dict[str, Any], depth: int) -> str:
    indent = "\t" * (depth + 1)
    kind = _type_name(schema, defs)
    props = _properties(schema, defs) if depth + 1 < _MAX_DEPTH else {}
    if not props:
        return f"{indent}{name} {kind}\n"
    inner = "".join(_field(k, v, defs, depth + 1) for k, v in props.items())
    return f"{indent}{name} {kind} {{\n{inner}{indent}}}\n"


def _resolve(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref``, unwrap optional (``anyOf`` with null) and arrays to the item."""
    for _ in range(_MAX_DEPTH * 2):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            schema = defs.get(ref.removeprefix("#/$defs/"), {})
            continue
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(options) == 1:
            schema = options[0]
            continue
        if schema.get("type") == "array" and "items" in schema:
            schema = schema["items"]
            continue
        return schema
    return {}


def _properties(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    props = _resolve(schema, defs).get("properties")
    return props if isinstance(props, dict) else {}


_SCALARS = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool"}


def _type_name(schema: Any, defs: dict[str, Any], depth: int = 0) -> str:
    """A short type name in Micro's spirit: ``string``, ``int64``, ``[]Item``, ``map[string]V``."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "any"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return ref.removeprefix("#/$defs/")
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return _type_name(options[0], defs, depth + 1)
    if options:
        return "|".join(_type_name(s, defs, depth + 1) for s in options)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "array":
        return "[]" + _type_name(schema.get("items", {}), defs, depth + 1)
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not schema.get("properties"):
            return "map[string]" + _type_name(extra, defs, depth + 1)
        return str(schema.get("title") or "object")
    if isinstance(kind, str):
        return _SCALARS.get(kind, kind)
    if "enum" in schema:
        return "string"
    return "any"
