"""``micro <service> [<handler>] <method> --field=value``: any service as a command.

Reached when ``micro <x>`` is neither built in nor a ``micro-<x>`` plugin (reference §3.1,
§3.4). The registry entry of service ``<x>`` says what it answers: each endpoint becomes a
command and each field of its request a flag, typed by the request's JSON Schema::

    $ micro helloworld
    NAME:
        micro helloworld
    ...
    COMMANDS:
        call
        ping-pong
        stream

    $ micro helloworld call --name=John
    {
        "msg": "Hello John"
    }

Commands are the endpoint's words in kebab case (``Helloworld.PingPong`` -> ``ping-pong``,
``Foo.Bar`` -> ``foo bar`` when the handler is not the service's own); typed, they match
case-insensitively and ignoring ``-``/``_``, so Micro's ``pingPong`` works too. The call
itself is ``micro call`` (``micro stream`` for streaming endpoints) with the request built
from the flags, so output and errors read exactly as theirs.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from micro.cli._client import Session, run_with_client
from micro.cli._format import table
from micro.cli.errors import CliError

if TYPE_CHECKING:
    from micro.registry.base import Endpoint, Service

__all__ = ["DynamicCommand", "run"]

_CORE = frozenset(
    {
        "network",
        "runtime",
        "registry",
        "config",
        "store",
        "broker",
        "auth",
        "events",
        "api",
        "proxy",
    }
)
"""Services of the platform itself: looked up in ``micro`` only."""

_MAX_DEPTH = 6
"""How deep nested request fields become flags (as ``micro get service`` shows them)."""

_HELP_FLAGS = ("help", "h")
_TRUE = {"", "1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
"""Go's ``strconv.ParseBool`` words; "" is a bare ``--flag``."""

_NEGATIVE_NUMBER = re.compile(r"-\d|-\.\d")
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

Flags = list[tuple[str, str | None]]
"""Flags in the order given: name without dashes, value (``None`` for a bare flag)."""


class DynamicCommand(click.Command):
    """``micro <service> ...``: every argument is the service's to interpret, so click
    parses none of them (``--help`` included); the service is looked up when the command
    runs, after the global ``-n``/``-e`` options have taken effect."""

    def __init__(self, service: str) -> None:
        super().__init__(service, add_help_option=False)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.args = list(args)
        return []

    def invoke(self, ctx: click.Context) -> None:
        assert self.name is not None
        run(self.name, ctx.args)


def run(service: str, args: list[str]) -> None:
    """Render help for, or call, ``service`` as ``micro <service> <args...>`` asks."""
    found = run_with_client(lambda session: _find(session, service))
    positionals, flags = split(args, _help_only)
    wants_help = any(name in _HELP_FLAGS for name, _ in flags)
    if not positionals:
        click.echo(service_help(service, found))
        return
    if len(positionals) > 2:
        raise CliError("Incorrect number of arguments", 1)
    # Once the flags' types are known, a bare boolean flag no longer takes the word after
    # it as its value: that word is an argument, and may name another endpoint. Words
    # that name endpoints whose flags disagree on it are too many arguments.
    seen = [positionals]
    while True:
        endpoint = find_endpoint(service, found, positionals)
        fields = request_fields(endpoint.request)
        again, flags = split(args, functools.partial(_is_bool, fields))
        if again == positionals:
            break
        if len(again) > 2 or again in seen:
            raise CliError("Incorrect number of arguments", 1)
        seen.append(again)
        positionals = again
    if wants_help:
        click.echo(command_help(service, positionals, endpoint, fields))
        return
    body = build_request(fields, flags, any_key=free_form(endpoint.request))
    _call(service, endpoint, json.dumps(body, separators=(",", ":")))


async def _find(session: Session, name: str) -> list[Service]:
    """Every version of ``name``: core services in ``micro``, others in the current
    namespace, else in ``micro``; Micro's "Unrecognized micro command" when none."""
    from micro.cli.registry import first_found

    domains = ["micro"] if name in _CORE else list(dict.fromkeys([session.namespace, "micro"]))
    found = await first_found(session, name, domains)
    if not found:
        await _not_running(session, name)
        raise CliError(f"Unrecognized micro command: {name}. Please refer to 'micro --help'", 1)
    return found


async def _not_running(session: Session, name: str) -> None:
    """CliError saying so when the runtime has a service ``name`` that is not running
    (building, restarting, failed): no node, but no unknown command either."""
    from micro import errors
    from micro.runtime.client import RPCRuntime

    try:
        services = await RPCRuntime(session.client).read(name=name)
    except errors.MicroError:  # no runtime, or not ours to read: as if there were none
        return
    if services:
        svc = services[0]
        why = svc.metadata.get("error", "").splitlines()[:1] or [svc.metadata.get("progress", "")]
        detail = f" ({why[0]})" if why[0] else ""
        raise CliError(
            f"Service {name} is not running: it is {svc.status}{detail}; "
            f"see micro status {name} and micro logs {name}",
            4,
        )


def _call(service: str, endpoint: Endpoint, request: str) -> None:
    """``micro call``, or ``micro stream`` for a streaming endpoint (whose client or bidi
    stream reads one JSON message per line of stdin when no flag was given)."""
    from micro.cli.call import call, stream

    if endpoint.metadata.get("stream") == "true":
        sends = endpoint.metadata.get("stream_type") in ("client", "bidi")
        assert stream.callback is not None
        stream.callback(
            service=service,
            endpoint=endpoint.name,
            request=None if sends and request == "{}" else request,
            metadata=(),
            output="json",
        )
        return
    assert call.callback is not None
    call.callback(
        service=service,
        endpoint=endpoint.name,
        request=request,
        metadata=(),
        output="json",
        request_timeout="10s",
        address=None,
    )


# -- arguments ----------------------------------------------------------------------------


def split(args: list[str], is_bool: Callable[[str], bool]) -> tuple[list[str], Flags]:
    """Positional words and flags: ``--k=v``, ``--k v``, bare ``--k``. A bare flag takes
    the next word as its value unless that is a flag or ``is_bool(k)`` and the word is
    no boolean; after ``--`` every word is positional."""
    positionals: list[str] = []
    flags: Flags = []
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            positionals += args[i:]
            break
        if not _is_flag(word):
            positionals.append(word)
            continue
        name, eq, value = word.lstrip("-").partition("=")
        if not name:
            raise CliError(f"Invalid flag: {word}. Expected format: --foo=bar", 1)
        if eq:
            flags.append((name, value))
        elif (
            i < len(args)
            and not _is_flag(args[i])
            and (not is_bool(name) or args[i] in _TRUE | _FALSE)
        ):
            flags.append((name, args[i]))
            i += 1
        else:
            flags.append((name, None))
    return positionals, flags


def _is_flag(word: str) -> bool:
    return word.startswith("-") and word != "-" and not _NEGATIVE_NUMBER.match(word)


def _help_only(name: str) -> bool:
    return name in _HELP_FLAGS


def _is_bool(fields: list[Field], name: str) -> bool:
    if name in _HELP_FLAGS:
        return True
    field = match_flag(fields, name)
    return field is not None and field.schema.get("type") == "boolean"


# -- endpoints ----------------------------------------------------------------------------


def _canon(word: str) -> str:
    return word.replace("-", "").replace("_", "").lower()


def _title(word: str) -> str:
    """``ping-pong`` -> ``PingPong``: the endpoint name Micro would try."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", word))


def _kebab(word: str) -> str:
    return _WORD_BOUNDARY.sub("-", word).replace("_", "-").lower()


def _endpoints(found: list[Service]) -> list[Endpoint]:
    """Endpoints of every version, once per name (the first version's wins)."""
    seen: dict[str, Endpoint] = {}
    for svc in found:
        for ep in svc.endpoints:
            seen.setdefault(ep.name, ep)
    return list(seen.values())


def command_of(service: str, endpoint: str) -> str:
    """The command for an endpoint: ``call`` for ``Helloworld.Call`` of helloworld,
    ``foo bar`` for ``Foo.Bar``."""
    handler, _, method = endpoint.partition(".")
    if _canon(handler) == _canon(service):
        return _kebab(method)
    return f"{_kebab(handler)} {_kebab(method)}"


def find_endpoint(service: str, found: list[Service], positionals: list[str]) -> Endpoint:
    """The endpoint ``[handler] method`` names: the service's own handler when the
    handler is not given; exit 5 when the service has no such endpoint."""
    handler, method = positionals if len(positionals) == 2 else (service, positionals[0])
    for ep in _endpoints(found):
        ep_handler, _, ep_method = ep.name.partition(".")
        if _canon(ep_handler) == _canon(handler) and _canon(ep_method) == _canon(method):
            return ep
    raise CliError(
        f"Endpoint {_title(handler)}.{_title(method)} not found for service {service}", 5
    )


# -- request fields -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A field of the request, nested ones by their path; its schema with ``$ref`` and
    optionality resolved."""

    path: tuple[str, ...]
    schema: dict[str, Any]
    defs: dict[str, Any]
    description: str
    leaf: bool


def _deref(schema: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``$ref`` followed and ``X | None`` unwrapped to ``X``; what the
    referring schema says itself (a description) wins over the definition."""
    for _ in range(_MAX_DEPTH * 2):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            own = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**defs.get(ref.removeprefix("#/$defs/"), {}), **own}
            continue
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(options) == 1 and len(schema["anyOf"]) == 2:
            own = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            schema = {**options[0], **own}
            continue
        return schema
    return {}


def request_fields(schema: dict[str, Any]) -> list[Field]:
    """Every field of a request schema, objects first then the fields inside them."""
    defs = schema.get("$defs", {})
    fields: list[Field] = []

    def walk(props: Any, prefix: tuple[str, ...]) -> None:
        if not isinstance(props, dict):
            return
        for name, raw in props.items():
            resolved = _deref(raw, defs)
            inner = resolved.get("properties")
            nested = isinstance(inner, dict) and bool(inner) and len(prefix) + 1 < _MAX_DEPTH
            path = (*prefix, name)
            description = str(resolved.get("description") or "").strip()
            fields.append(Field(path, resolved, defs, description, leaf=not nested))
            if nested:
                walk(inner, path)

    walk(_deref(schema, defs).get("properties"), ())
    return fields


def match_flag(fields: list[Field], name: str) -> Field | None:
    """The field a flag names: by its path joined with ``.``, ``-`` or ``_`` exactly,
    else with any of those in any place (``--options-max-count`` for
    ``options.max_count``); the shortest path when several match."""

    def loose(text: str) -> str:
        return re.sub(r"[-.]", "_", text).lower()

    exact = [f for f in fields if name in {sep.join(f.path) for sep in ".-_"}]
    found = exact or [f for f in fields if loose(".".join(f.path)) == loose(name)]
    return min(found, key=lambda f: len(f.path)) if found else None


def free_form(schema: dict[str, Any]) -> Field | None:
    """For a request that is a mapping rather than a struct (``dict[str, int]``, ``Any``):
    the field any flag names, with the schema of its values; ``None`` for a struct."""
    defs = schema.get("$defs", {})
    root = _deref(schema, defs)
    if "properties" in root or root.get("type", "object") != "object":
        return None
    values = root.get("additionalProperties", {})
    if values is False:
        return None
    return Field((), _deref(values, defs), defs, "", leaf=True)


def build_request(
    fields: list[Field], flags: Flags, *, any_key: Field | None = None
) -> dict[str, Any]:
    """The request the flags describe; ``Unknown flag: <k>`` or a bad value: exit 1.
    A repeated flag adds to a list and otherwise the last one wins; fields set inside an
    object given as JSON are merged into it. With ``any_key`` (a mapping request, see
    :func:`free_form`) every flag is a key of the request, as typed."""
    given: dict[tuple[str, ...], tuple[Field, str, list[str | None]]] = {}
    for name, value in flags:
        field = match_flag(fields, name)
        if field is None and any_key is not None:
            field = Field((name,), any_key.schema, any_key.defs, "", leaf=True)
        if field is None:
            raise CliError(f"Unknown flag: {name}", 1)
        given.setdefault(field.path, (field, name, []))[2].append(value)
    body: dict[str, Any] = {}
    for path, (field, name, values) in sorted(given.items(), key=lambda item: len(item[0])):
        value = coerce(field.schema, field.defs, values, name)
        target = body
        for key in path[:-1]:
            inner = target.get(key)
            target = target.setdefault(key, {}) if not isinstance(inner, dict) else inner
        target[path[-1]] = value
    return body


# -- values -------------------------------------------------------------------------------


def coerce(
    schema: dict[str, Any], defs: dict[str, Any], values: list[str | None], flag: str
) -> Any:
    """A flag's value(s) as the JSON the schema asks for."""
    if schema.get("type") == "array":
        items = _deref(schema.get("items", {}), defs)
        found: list[Any] = []
        for value in values:
            found += _array(items, defs, _need(value, flag, schema, defs), flag)
        return found
    return _value(schema, values[-1], flag)


def _array(items: dict[str, Any], defs: dict[str, Any], value: str, flag: str) -> list[Any]:
    """One flag's share of a list: a JSON list, a JSON item (objects, lists), or words
    split on commas (scalars)."""
    if value.lstrip().startswith("["):
        decoded = _json(value)
        if isinstance(decoded, list):
            return decoded
    if _kind(items) not in ("boolean", "integer", "number", "string", "enum"):
        return [_value(items, value, flag)]
    return [_value(items, word, flag) for word in value.split(",")] if value else []


def _kind(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "enum"
    kind = schema.get("type")
    return kind if isinstance(kind, str) else "any"


def _value(schema: dict[str, Any], value: str | None, flag: str) -> Any:
    kind = _kind(schema)
    if kind == "boolean":
        if value in _TRUE or value is None:
            return True
        if value in _FALSE:
            return False
        raise _invalid(flag, value, "a boolean (true or false)")
    text = _need(value, flag, schema, {})
    if kind == "enum":
        options = schema["enum"]
        for option in options:
            if text == option or (not isinstance(option, str) and _json(text) == option):
                return option
        raise _invalid(flag, text, "one of " + ", ".join(str(o) for o in options))
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text, 0)
        except ValueError:
            pass
        try:
            return int(text)  # "010": decimal, where base 0 refuses a leading zero
        except ValueError:
            raise _invalid(flag, text, "an integer") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _invalid(flag, text, "a number")
        return number
    if kind in ("object", "array"):
        decoded = _json(text)
        expected = dict if kind == "object" else list
        if not isinstance(decoded, expected):
            raise _invalid(flag, text, f"a JSON {kind}")
        return decoded
    decoded = _json(text)  # a union or anything: JSON if it is, else the words as a string
    return text if decoded is _NOT_JSON else decoded


_NOT_JSON = object()


def _json(text: str) -> Any:
    """``text`` decoded, or ``_NOT_JSON`` (``NaN`` and ``Infinity`` too: not JSON)."""
    try:
        return json.loads(text, parse_constant=_not_a_constant)
    except ValueError:
        return _NOT_JSON


def _not_a_constant(word: str) -> Any:
    raise ValueError(word)


def _need(value: str | None, flag: str, schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if value is None:
        raise CliError(f"Flag --{flag} needs a value ({type_name(schema, defs)})", 1)
    return value


def _invalid(flag: str, value: str, expected: str) -> CliError:
    return CliError(f"Invalid value {value!r} for flag --{flag}: expected {expected}", 1)


# -- help ---------------------------------------------------------------------------------


def type_name(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """Micro's type words: ``string``, ``int64``, ``bool``, ``[]string``, ``map[string]T``."""
    from micro.cli.registry import _type_name

    return _type_name(schema, defs)


def service_help(service: str, found: list[Service]) -> str:
    """Micro's ``micro <service>`` help: name, version, usage, the commands, sorted."""
    versions = ", ".join(dict.fromkeys(svc.version for svc in found))
    rows = sorted(
        (command_of(service, ep.name), ep.metadata.get("description", ""))
        for ep in _endpoints(found)
    )
    lines = [
        "NAME:",
        f"\tmicro {service}",
        "",
        "VERSION:",
        f"\t{versions}",
        "",
        "USAGE:",
        f"\tmicro {service} [command]",
    ]
    if rows:
        lines += ["", "COMMANDS:", *(f"\t{line}" for line in table(rows))]
    return "\n".join(lines)


def command_help(
    service: str, positionals: list[str], endpoint: Endpoint, fields: list[Field]
) -> str:
    """Micro's ``micro <service> <command> --help``: name, usage, one flag per leaf
    field (``--options_domain string``), with the field's description if it has one."""
    command = f"micro {service} {command_of(service, endpoint.name)}"
    lines = ["NAME:", f"\t{command}", "", "USAGE:", f"\t{command} [flags]"]
    description = endpoint.metadata.get("description", "")
    if description:
        lines += ["", "DESCRIPTION:", f"\t{description}"]
    rows = [
        (f"--{'_'.join(f.path)} {type_name(f.schema, f.defs)}", f.description)
        for f in fields
        if f.leaf
    ]
    any_key = free_form(endpoint.request)
    if any_key is not None:
        rows.append((f"--<key> {type_name(any_key.schema, any_key.defs)}", "a key of the request"))
    if rows:
        lines += ["", "FLAGS:", *(f"\t{line}" for line in table(rows))]
    return "\n".join(lines)
