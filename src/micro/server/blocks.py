"""The building blocks the server hosts: how each backend is built, which handlers serve it.

One table, so ``micro server`` (every block on the proxy listener) and ``micro service
<block>`` (one block on a listener of its own) build blocks the same way. A block may need
others built first (config lives on the store); they are built in the table's order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from micro.server import plugins, profiles
from micro.settings import Settings

__all__ = ["BLOCKS", "Block", "build"]


@dataclass(frozen=True)
class Block:
    """A block: its backend from settings (and blocks built before it), its handlers."""

    name: str
    backend: Callable[[Settings, dict[str, Any]], Any]
    handlers: Callable[[Any, Settings], list[object]]
    requires: tuple[str, ...] = ()
    alone: bool = True
    """False for a block that only runs inside ``micro server`` (it uses the blocks it
    requires in-process, not through the proxy)."""


def _plugin(block: str) -> Callable[[Settings, dict[str, Any]], Any]:
    def build(settings: Settings, built: dict[str, Any]) -> Any:
        name = profiles.plugin_for(block, settings)
        if name == "rpc":
            raise ValueError(f"the server cannot use the rpc {block}: it hosts the {block} itself")
        return plugins.create(block, name, settings)

    return build


def _registry_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.registry.handler import Registry

    return [Registry(backend, max_services=settings.registry_max_services)]


def _store_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.store.handler import Store

    return [Store(backend)]


def _shared_secret(settings: Settings, variable: str, what: str) -> None:
    """A replica of a shared profile must not make up a secret the others don't have."""
    import os

    if profiles.shared(settings) and not os.environ.get(variable, "").strip():
        raise ValueError(
            f"the {settings.profile} profile needs {variable} ({what}), the same on every "
            "replica: `micro cluster env` prints a set of such settings"
        )


def _peers(settings: Settings, built: dict[str, Any]) -> Any:
    from micro.peers import Peers

    return Peers(built["broker"], settings.replica)


def _config(settings: Settings, built: dict[str, Any]) -> Any:
    from micro.config.secrets import SecretBox
    from micro.config.store import StoreConfig

    _shared_secret(settings, "MICRO_CONFIG_SECRET_KEY", "the key that seals secrets")
    return StoreConfig(
        built["store"],
        secrets=SecretBox.from_settings(settings),
        peers=_peers(settings, built),
    )


def _config_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.config.handler import Config

    return [Config(backend)]


def _auth(settings: Settings, built: dict[str, Any]) -> Any:
    from micro.auth.keys import PRIVATE_KEY_VAR, KeyPair
    from micro.auth.store import StoreAuth

    _shared_secret(settings, PRIVATE_KEY_VAR, "the key that signs tokens")
    return StoreAuth(
        built["store"],
        KeyPair.from_settings(settings),
        peers=_peers(settings, built),
        token_ttl=settings.auth_token_ttl,
    )


def _auth_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.auth.handler import handlers

    return list(handlers(backend))


def _broker_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.broker.handler import Broker

    return [Broker(backend)]


def _events_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.events.handler import Store, Stream

    return [Stream(backend), Store(backend)]


def _runtime(settings: Settings, built: dict[str, Any]) -> Any:
    from micro.runtime.local import LocalRuntime

    return LocalRuntime.build(settings, built["store"], built["auth"], built["registry"])


def _runtime_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.runtime.handler import Runtime, Source

    return [Runtime(backend), Source(backend)]


def _network(settings: Settings, built: dict[str, Any]) -> Any:
    from micro.network.local import LocalNetwork

    # Routes name this server by the id its network node registers under.
    return LocalNetwork(built["registry"], router=f"network-{settings.replica}")


def _network_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.network.handler import Network

    return [Network(backend)]


def _traces(settings: Settings, built: dict[str, Any]) -> Any:
    from micro.trace.store import TraceStore

    return TraceStore(max_traces=settings.trace_max_traces, max_bytes=settings.trace_max_bytes)


def _trace_handlers(backend: Any, settings: Settings) -> list[object]:
    from micro.trace.handler import Trace

    return [Trace(backend)]


BLOCKS: dict[str, Block] = {
    "registry": Block("registry", _plugin("registry"), _registry_handlers),
    "store": Block("store", _plugin("store"), _store_handlers),
    "broker": Block("broker", _plugin("broker"), _broker_handlers),
    "config": Block("config", _config, _config_handlers, requires=("store", "broker")),
    "auth": Block("auth", _auth, _auth_handlers, requires=("store", "broker")),
    "events": Block("events", _plugin("events"), _events_handlers),
    "runtime": Block(
        "runtime",
        _runtime,
        _runtime_handlers,
        requires=("store", "auth", "registry"),
        alone=False,
    ),
    "network": Block("network", _network, _network_handlers, requires=("registry",), alone=False),
    "trace": Block("trace", _traces, _trace_handlers, alone=False),
}
"""Every block, in the order they are built."""


def build(names: list[str], settings: Settings) -> dict[str, Any]:
    """Backends for ``names`` and what they require, in table order."""
    wanted: set[str] = set()

    def need(name: str) -> None:
        if name not in BLOCKS:
            raise ValueError(f"unknown block {name!r}; known blocks: {', '.join(BLOCKS)}")
        wanted.add(name)
        for dep in BLOCKS[name].requires:
            need(dep)

    for name in names:
        need(name)
    built: dict[str, Any] = {}
    for name, block in BLOCKS.items():
        if name in wanted:
            built[name] = block.backend(settings, built)
    return built
