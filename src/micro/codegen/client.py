"""A typed async client module for one service, from its endpoints' registry records.

``micro gen client helloworld`` writes, for ``Helloworld.Call`` (unary), ``.Stream``
(server streaming) and ``.PingPong`` (bidi)::

    class HelloworldClient:
        async def call(self, req: CallRequest) -> CallResponse: ...
        def stream(self, req: StreamRequest) -> AsyncIterator[StreamResponse]: ...
        def ping_pong(self, reqs: AsyncIterable[Ping]) -> AsyncIterator[Pong]: ...

with the messages as ``msgspec.Struct`` classes (:mod:`micro.codegen.types`). Calls go
through :mod:`micro.client` (the running service's client, or the environment's), so a
generated client needs nothing but ``micro-python``, and the module passes
``mypy --strict``. The endpoints may come from the registry or from a handler module
(:mod:`micro.codegen.handlers`): the output is the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from micro.codegen.types import TypeWriter, identifier
from micro.registry.base import Endpoint

__all__ = ["class_name", "render"]


def class_name(service: str) -> str:
    """``hello-world`` -> ``HelloWorldClient``; ``v1.foo`` -> ``V1FooClient``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", service) if w]
    return identifier("".join(w[:1].upper() + w[1:] for w in words) + "Client")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True, slots=True)
class _Method:
    name: str
    endpoint: str
    kind: str
    request: str
    response: str


def render(service: str, endpoints: list[Endpoint], *, source: str) -> str:
    """The module's source: a client of ``service`` with one method per endpoint
    (``Debug.*``, which every service answers, left out); ``source`` says where the
    endpoints were read, for the module's docstring."""
    endpoints = [ep for ep in endpoints if not ep.name.startswith("Debug.")]
    client = class_name(service)
    types = TypeWriter(reserved=frozenset({client}))
    handlers = {ep.name.split(".", 1)[0] for ep in endpoints}
    methods: list[_Method] = []
    taken = {"service", "client"}
    for ep in sorted(endpoints, key=lambda e: e.name):
        handler, _, method = ep.name.partition(".")
        base = _snake(method) if len(handlers) == 1 else f"{_snake(handler)}_{_snake(method)}"
        name = identifier(base, reserved=frozenset(taken))
        taken.add(name)
        hint = handler + method
        methods.append(
            _Method(
                name=name,
                endpoint=ep.name,
                kind=ep.metadata.get("stream_type", "unary"),
                request=types.annotation(ep.request, f"{hint}Request"),
                response=types.annotation(ep.response, f"{hint}Response"),
            )
        )
    body = [*types.definitions, _client(client, service, methods)]
    if any(m.kind == "bidi" for m in methods):
        body.append(_SEND_ALL)
    text = "\n\n\n".join(body) + "\n"
    return _head(service, source, types.imports, text) + text


def _head(service: str, source: str, imports: set[str], body: str) -> str:
    """The docstring and the imports ``body`` uses (no unused one for linters to flag)."""
    modules = sorted({*imports, *(["asyncio"] if "asyncio." in body else [])})
    abc = [n for n in ("AsyncIterable", "AsyncIterator") if re.search(rf"\b{n}\[", body)]
    typing = [n for n in ("Any", "Literal") if re.search(rf"\b{n}\b", body)]
    lines = [
        f'"""A typed client of the {service} service, written by ``micro gen client`` from',
        f'{source}. Write it again rather than edit it."""',
        "",
        "from __future__ import annotations",
        "",
        *(f"import {m}" for m in modules),
        *([f"from collections.abc import {', '.join(abc)}"] if abc else []),
        *([f"from typing import {', '.join(typing)}"] if typing else []),
        *([""] if modules or abc or typing else []),
        "import micro.client",
        "import msgspec",
        "",
        f"SERVICE = {json.dumps(service)}",
        '"""The service\'s name in the registry."""',
        "",
        "",
    ]
    return "\n".join(lines) + "\n"


def _client(name: str, service: str, methods: list[_Method]) -> str:
    lines = [
        f"class {name}:",
        f'    """Calls the {service} service: one method per endpoint."""',
        "",
        "    def __init__(",
        "        self,",
        "        client: micro.client.Client | None = None,",
        "        *,",
        "        service: str = SERVICE,",
        "    ) -> None:",
        "        self.client = client",
        '        """The client calls go through; ``None``: ``micro.client.default()``."""',
        "        self.service = service",
        "",
        "    def _client(self) -> micro.client.Client:",
        "        return self.client or micro.client.default()",
    ]
    for m in methods:
        lines.append("")
        lines.extend(_METHODS[m.kind](m))
    return "\n".join(lines)


def _signature(m: _Method, param: str, returns: str) -> list[str]:
    """A method's first lines, laid out as ``ruff format`` lays them out."""
    return [
        f"    async def {m.name}(",
        "        self,",
        f"        {param}{' = None' if param.endswith(': Any') else ''},",
        "        *,",
        "        timeout: float | None = None,",
        "        metadata: dict[str, str] | None = None,",
        f"    ) -> {returns}:",
    ]


def _open(m: _Method, *, request: bool) -> list[str]:
    """The arguments of the ``call``/``stream`` the method makes, one a line."""
    return [
        "            self.service,",
        f'            "{m.endpoint}",',
        *(["            req,"] if request else []),
        f"            response_type={_rt(m)},",
        "            timeout=timeout,",
        "            metadata=metadata,",
        "        )",
    ]


def _unary(m: _Method) -> list[str]:
    return [
        *_signature(m, f"req: {m.request}", m.response),
        f'        """``{m.endpoint}``."""',
        f"        rsp: {m.response} = await self._client().call(",
        *_open(m, request=True),
        "        return rsp",
    ]


def _server(m: _Method) -> list[str]:
    return [
        *_signature(m, f"req: {m.request}", f"AsyncIterator[{m.response}]"),
        f'        """``{m.endpoint}``: its responses, as they come."""',
        "        call = await self._client().stream(",
        *_open(m, request=True),
        "        async with call:",
        "            async for item in call:",
        f"                rsp: {m.response} = item",
        "                yield rsp",
    ]


def _client_stream(m: _Method) -> list[str]:
    return [
        *_signature(m, f"reqs: AsyncIterable[{m.request}]", m.response),
        f'        """``{m.endpoint}``: sends every request, then answers the one response."""',
        "        call = await self._client().stream(",
        *_open(m, request=False),
        "        async with call:",
        "            async for req in reqs:",
        "                await call.send(req)",
        f"            rsp: {m.response} = await call.response()",
        "            return rsp",
    ]


def _bidi(m: _Method) -> list[str]:
    return [
        *_signature(m, f"reqs: AsyncIterable[{m.request}]", f"AsyncIterator[{m.response}]"),
        f'        """``{m.endpoint}``: sends ``reqs`` while it yields the responses."""',
        "        call = await self._client().stream(",
        *_open(m, request=False),
        "        async with call:",
        "            sending = asyncio.ensure_future(_send_all(call, reqs))",
        "            try:",
        "                async for item in call:",
        f"                    rsp: {m.response} = item",
        "                    yield rsp",
        "                await sending",
        "            finally:",
        "                sending.cancel()",
    ]


def _rt(m: _Method) -> str:
    """The ``response_type`` argument: the annotation itself (msgspec decodes into a
    class, a union or a generic alike), ``Any`` when there is nothing to decode into."""
    return "Any" if m.response in ("Any", "None") else m.response


_METHODS = {"unary": _unary, "server": _server, "client": _client_stream, "bidi": _bidi}

_SEND_ALL = '''async def _send_all(
    call: micro.client.ClientStream[Any],
    reqs: AsyncIterable[Any],
) -> None:
    """Send every request of a bidi stream, then close the sending side."""
    async for req in reqs:
        await call.send(req)
    call.close_send()'''
