"""Named profiles: a whole wiring of backends picked with one word (``MICRO_PROFILE``).

A profile is data, not code with side effects: it names a plugin per block, and
``MICRO_<BLOCK>`` overrides a single block on top of it.
"""

from __future__ import annotations

from micro.settings import Settings

__all__ = ["PROFILES", "plugin_for"]

PROFILES: dict[str, dict[str, str]] = {
    "local": {"registry": "memory", "store": "sqlite", "broker": "memory", "events": "sqlite"},
    "test": {"registry": "memory", "store": "memory", "broker": "memory", "events": "memory"},
}


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
