"""Named profiles: a whole wiring of backends picked with one word (``MICRO_PROFILE``).

A profile is data, not code with side effects: it names a plugin per block, and
``MICRO_<BLOCK>`` overrides a single block on top of it. In a *shared* profile the
server keeps nothing on its own disk that another replica would need: every replica
reads the same backends, and the secrets they must agree on come from the environment.
"""

from __future__ import annotations

from micro.settings import Settings

__all__ = ["PROFILES", "SHARED", "cluster_env", "plugin_for", "shared"]

PROFILES: dict[str, dict[str, str]] = {
    "local": {"registry": "memory", "store": "sqlite", "broker": "memory", "events": "sqlite"},
    "test": {"registry": "memory", "store": "memory", "broker": "memory", "events": "memory"},
    "cluster": {"registry": "etcd", "store": "postgres", "broker": "nats", "events": "nats"},
}

SHARED: frozenset[str] = frozenset({"cluster"})
"""Profiles whose servers are replicas of one platform."""


def shared(settings: Settings) -> bool:
    """True when this server is one replica among others (see the module docstring)."""
    return settings.profile in SHARED


def plugin_for(block: str, settings: Settings) -> str:
    """The plugin name for ``block``: its ``MICRO_<BLOCK>`` variable, else the profile's."""
    override = getattr(settings, block, None)
    if isinstance(override, str) and override:
        return override
    try:
        profile = PROFILES[settings.profile]
    except KeyError:
        raise ValueError(
            f"unknown profile {settings.profile!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
    return profile[block]


def cluster_env(*, store: str, nats: str, registry: str) -> dict[str, str]:
    """The settings every replica of a cluster shares: the profile, the backends'
    addresses, and freshly made secrets (the key that signs tokens, the key that seals
    config secrets), which a lone server would have generated under ``MICRO_HOME``."""
    import base64

    from micro.auth.keys import PRIVATE_KEY_VAR, KeyPair
    from micro.config.secrets import new_key

    return {
        "MICRO_PROFILE": "cluster",
        "MICRO_STORE_ADDRESS": store,
        "MICRO_BROKER_ADDRESS": nats,
        "MICRO_EVENTS_ADDRESS": nats,
        "MICRO_REGISTRY_ADDRESS": registry,
        PRIVATE_KEY_VAR: base64.b64encode(KeyPair.generate().private_pem()).decode(),
        "MICRO_CONFIG_SECRET_KEY": base64.b64encode(new_key()).decode(),
    }
