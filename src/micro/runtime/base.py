"""The runtime interface: services run from source, by name and version, per namespace.

A service moves through these statuses, each a fact and never a guess (Micro's ``status``
said "running" for a process that had not started serving, reference §9):

``pending``    created, waiting for a build slot
``building``   fetching the source, building its virtualenv
``starting``   its processes are started, not all of them registered yet
``running``    every instance is registered (answers calls)
``stopping``   being stopped (SIGTERM, then SIGKILL after the grace period)
``stopped``    stopped on purpose
``error``      could not build or keep running; ``metadata["error"]`` says why
"""

from __future__ import annotations

import builtins
import re
from abc import ABC, abstractmethod
from typing import ClassVar, Final, Literal

import msgspec

from micro import errors
from micro.rpc.client import CORE_SERVICES
from micro.watch import Subscription

__all__ = [
    "STATUSES",
    "LogRecord",
    "LogStream",
    "Runtime",
    "Service",
    "Status",
    "check_service",
]

Status = Literal["pending", "building", "starting", "running", "stopping", "stopped", "error"]
STATUSES: Final = ("pending", "building", "starting", "running", "stopping", "stopped", "error")


class Service(msgspec.Struct, omit_defaults=True):
    """A service as the runtime knows it.

    ``source`` is where its code comes from: ``source://<name>:<version>`` for an
    uploaded folder, else a git URL (the ref is the version). ``metadata`` carries
    ``owner``, ``group``, ``started`` (RFC 3339), ``source`` (what the user typed),
    ``build`` (the venv's key), ``entrypoint``, and ``error`` when the status is error.
    """

    name: str
    version: str = "latest"
    source: str = ""
    metadata: dict[str, str] = {}
    status: str = ""
    instances: int = 1
    env: dict[str, str] = {}
    """Extra environment variables for its processes (``micro run --env_vars``)."""


class LogRecord(msgspec.Struct, omit_defaults=True):
    """One line a service (or its build) printed."""

    timestamp: float
    message: str
    metadata: dict[str, str] = {}
    """``instance`` (0, 1, ... or ``build``) and ``version``."""


class LogStream(Subscription[LogRecord]):
    """Log records: the last ``count`` lines, then (when following) new ones as printed."""


class Runtime(ABC):
    """Creates, lists, updates and deletes services; streams their logs."""

    name: ClassVar[str]

    @abstractmethod
    async def create(
        self,
        service: Service,
        *,
        force: bool = False,
        namespace: str = "micro",
        git_token: str = "",
    ) -> Service:
        """Start running ``service`` (its build goes on in the background: poll
        :meth:`read` for the status). Conflict when it already runs, unless ``force``,
        which replaces it. ``git_token`` fetches a private repository."""

    @abstractmethod
    async def read(
        self, *, name: str = "", version: str = "", namespace: str = "micro"
    ) -> builtins.list[Service]:
        """The services of ``namespace`` (all, or those named), sorted by name and version."""

    @abstractmethod
    async def update(
        self, service: Service, *, namespace: str = "micro", git_token: str = ""
    ) -> Service:
        """Rebuild from ``service.source`` and roll the new build out (the old instances
        serve until the new ones run; poll :meth:`read`: ``metadata["updating"]`` while
        it goes on, ``metadata["update_error"]`` when it failed). With no source and no
        environment, only the instance count changes: scaled without a restart. Not
        found when it is not running."""

    @abstractmethod
    async def delete(self, name: str, *, version: str = "", namespace: str = "micro") -> None:
        """Stop the service (every version when ``version`` is empty) and forget it.
        Not found when there is no such service."""

    @abstractmethod
    def logs(
        self,
        name: str,
        *,
        version: str = "",
        count: int = 15,
        follow: bool = False,
        namespace: str = "micro",
    ) -> LogStream:
        """Its last ``count`` log lines, then new ones while ``follow``. Not found (on the
        first :meth:`LogStream.next`) when there is no such service."""

    @abstractmethod
    async def upload(self, name: str, version: str, data: bytes, *, namespace: str) -> str:
        """Keep an archive of a service's folder (made by :func:`micro.runtime.source.pack`)
        and return its source id, ``source://<name>:<version>``."""

    def check_source(self, source: str, *, platform_admin: bool) -> None:  # noqa: B027 - optional hook
        """Refuse (Forbidden) a source the caller may not run; every source by default."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the runtime holds."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,127}")
_MAX_INSTANCES: Final = 64
_MAX_ENV_VAR: Final = 128 * 1024
"""What execve takes per variable (Linux's MAX_ARG_STRLEN): ``NAME=value`` and its NUL."""
_MAX_ENV: Final = 1024 * 1024
"""All of a service's variables together (execve takes a quarter of the stack limit, 2 MiB
by default, for the arguments and the whole environment)."""


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB"


def check_service(service: Service) -> None:
    """BadRequest for a service no process could be started with, before it is kept:
    a bad name, version or instance count, or environment variables execve would refuse
    (a NUL, over 128 KiB each, over 1 MiB together)."""
    where = "runtime.Runtime"
    if not _NAME.fullmatch(service.name):
        raise errors.BadRequest(
            where, f"invalid service name {service.name!r}: letters, digits, '.', '_', '-'"
        )
    if service.name in CORE_SERVICES:
        raise errors.BadRequest(
            where, f"{service.name!r} is the name of a platform service: choose another name"
        )
    if not _VERSION.fullmatch(service.version):
        raise errors.BadRequest(where, f"invalid version {service.version!r}")
    if not 1 <= service.instances <= _MAX_INSTANCES:
        raise errors.BadRequest(where, f"instances must be between 1 and {_MAX_INSTANCES}")
    total = 0
    for key, value in service.env.items():
        if not key or "=" in key or "\0" in key:
            raise errors.BadRequest(where, f"invalid environment variable name {key!r}")
        if "\0" in value:
            raise errors.BadRequest(where, f"environment variable {key} holds a NUL character")
        size = len(key.encode()) + len(value.encode()) + 2
        if size > _MAX_ENV_VAR:
            raise errors.BadRequest(
                where,
                f"environment variable {key} is too big ({_kib(size)}): a process takes at "
                f"most {_kib(_MAX_ENV_VAR)} per variable",
            )
        total += size
    if total > _MAX_ENV:
        raise errors.BadRequest(
            where,
            f"the environment variables are too big ({_kib(total)}): at most "
            f"{_kib(_MAX_ENV)} together",
        )
