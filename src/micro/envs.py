"""Environments: named servers the CLI and hand-started services talk to.

Kept in ``MICRO_HOME/config.json`` as Micro does: ``env`` is the current one and ``envs``
maps names to ``{"name", "proxy_address", "description"}``. The built-in ``local``
(127.0.0.1:8081) always exists and cannot be deleted. Writes go through a temporary
file and a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micro.settings import DEFAULT_PROXY, Settings

__all__ = ["BUILTIN", "Environment", "UserConfig", "resolve_proxy"]


@dataclass(frozen=True, slots=True)
class Environment:
    """A named server."""

    name: str
    proxy_address: str
    description: str = ""


BUILTIN = {"local": Environment("local", DEFAULT_PROXY, "Local running Micro Server")}


class UserConfig:
    """``config.json``: environments, current namespaces, and free dotted keys."""

    def __init__(self, home: Path) -> None:
        self.path = home / "config.json"
        self.data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"env": "local"}
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {self.path}: {exc}") from None
        return data if isinstance(data, dict) else {"env": "local"}

    def save(self) -> None:
        """Write atomically with mode 0600."""
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    # -- environments ---------------------------------------------------------------------

    def environments(self) -> dict[str, Environment]:
        """Every environment, built-ins included, by name."""
        found = dict(BUILTIN)
        for name, raw in (self.data.get("envs") or {}).items():
            if isinstance(raw, dict):
                found[name] = Environment(
                    name, str(raw.get("proxy_address", "")), str(raw.get("description", ""))
                )
        return found

    def current_env(self) -> str:
        """The current environment's name."""
        return str(self.data.get("env") or "local")

    def add_env(self, env: Environment) -> None:
        """Add or replace an environment."""
        envs = self.data.setdefault("envs", {})
        envs[env.name] = {"proxy_address": env.proxy_address, "description": env.description}
        self.save()

    def set_env(self, name: str) -> None:
        """Make ``name`` current; ``KeyError`` if it does not exist."""
        if name not in self.environments():
            raise KeyError(name)
        self.data["env"] = name
        self.save()

    def delete_env(self, name: str) -> None:
        """Delete an added environment (built-ins come back by themselves)."""
        (self.data.get("envs") or {}).pop(name, None)
        self.save()

    # -- dotted keys ----------------------------------------------------------------------

    def get(self, path: str) -> Any:
        """The value at a dotted path, or ``None``."""
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def set(self, path: str, value: Any) -> None:
        """Set the value at a dotted path (``None`` deletes it)."""
        parts = path.split(".")
        node = self.data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
        self.save()

    def namespace(self, env: str) -> str:
        """The current namespace of an environment (default ``micro``)."""
        value = self.get(f"namespaces.{env}.current")
        return str(value) if value else "micro"


def resolve_proxy(settings: Settings, env_name: str | None = None) -> tuple[str, str]:
    """(environment name, proxy address) for this process: ``MICRO_PROXY`` wins, then the
    named or current environment. ``KeyError`` for an unknown environment."""
    config = UserConfig(settings.home)
    name = env_name or settings.env or config.current_env()
    if settings.proxy:
        return name, settings.proxy
    envs = config.environments()
    return name, envs[name].proxy_address
