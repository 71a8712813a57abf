"""The config interface: one JSON tree per namespace, read and written by dotted path.

``set("db.host", "x")`` creates the objects on the way; setting an *object* merges it key
by key into what is there (deeply), while any other value (string, number, boolean,
array, null) replaces what is there, as does an object set over a scalar. Values can be
*secrets*: encrypted at rest, and read back as ``"[secret]"`` unless asked for with
``secret=True``. Namespaces never see each other's trees.

Reads return a :class:`Value`, never ``None``: a missing path is a value whose getters
answer their defaults and whose :attr:`Value.exists` is false.
"""

from __future__ import annotations

import builtins
import logging
import re
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Any, ClassVar, Final, TypeVar

import msgspec

from micro import errors
from micro._bounded import BoundedDict, text_size
from micro.config import _coerce
from micro.watch import Subscription

__all__ = [
    "DEFAULT_NAMESPACE",
    "MAX_PATH_BYTES",
    "SECRET_MASK",
    "Config",
    "SecretError",
    "Value",
    "Watcher",
    "check_namespace",
    "normalize",
    "split_path",
]

T = TypeVar("T")

DEFAULT_NAMESPACE: Final = "micro"
MAX_PATH_BYTES: Final = 1024
SECRET_MASK: Final = "[secret]"
"""What a secret reads as without ``secret=True``, whatever its type (as in Micro)."""

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MISSING: Any = object()

log = logging.getLogger("micro.config")
_warned: BoundedDict[tuple[str, str, int], bool] = BoundedDict(64 * 1024)
"""(path, type, revision) already warned about: a getter read on every request warns once
per value, not once per read."""


def _wrong_type(value: Value, want: str) -> None:
    """Say, once per value, that the value at a path is not a ``want`` and its getter
    answers the default: a silent fallback hides a typo in the config for good."""
    if value.data is None:
        return
    key = (value.path, want, value.revision)
    if key in _warned:
        return
    _warned.set(key, True, text_size(key[:2]))
    log.warning(
        "config value at %r is not %s (it is %s): using the default",
        value.path,
        want,
        _kind(value.data),
    )


def _kind(data: Any) -> str:
    """The JSON type of a decoded value, as a reader of the config knows it."""
    if isinstance(data, builtins.bool):
        return "a boolean"
    if isinstance(data, builtins.int | builtins.float):
        return "a number"
    if isinstance(data, str):
        return f"the string {data[:40]!r}"
    if isinstance(data, builtins.list):
        return "an array"
    return "an object"


class SecretError(errors.InternalServerError):
    """500: a secret cannot be encrypted or decrypted (no key, or not the key it was
    encrypted with). Never answered with garbage instead."""

    ID: ClassVar[str] = "config.secret"

    def __init__(self, detail: str) -> None:
        super().__init__(self.ID, detail)

    @classmethod
    def matches(cls, exc: BaseException) -> bool:
        """True for this error, also after it crossed the wire (as a plain 500)."""
        return isinstance(exc, errors.MicroError) and exc.code == 500 and exc.id == cls.ID


def split_path(path: str) -> tuple[str, ...]:
    """``"a.b.c"`` -> ``("a", "b", "c")``; ``""`` is the root, ``()``.

    Raises BadRequest for an empty segment (``"a..b"``, ``".a"``) or a path over
    :data:`MAX_PATH_BYTES`.
    """
    if not path:
        return ()
    parts = tuple(path.split("."))
    if "" in parts:
        raise errors.BadRequest("config", f"invalid path {path!r}: a dotted path has no empty part")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise errors.BadRequest("config", f"path is longer than {MAX_PATH_BYTES} bytes")
    return parts


def check_namespace(namespace: str) -> None:
    """A namespace is letters, digits, ``_ . -``, at most 128 characters."""
    if not _NAMESPACE.fullmatch(namespace):
        raise errors.BadRequest(
            "config",
            f"invalid namespace {namespace!r}: use letters, digits, '_', '.' or '-' "
            "(at most 128, starting with a letter or digit)",
        )


def normalize(value: Any) -> Any:
    """``value`` as plain JSON data (dicts, lists, str, int, float, bool, None).

    Anything msgspec can encode is accepted (Structs, dataclasses, tuples ...); anything
    else is a BadRequest naming what was wrong.
    """
    try:
        return msgspec.json.decode(msgspec.json.encode(value))
    except (TypeError, msgspec.EncodeError, msgspec.DecodeError) as exc:
        raise errors.BadRequest("config", f"invalid config value: {exc}") from None


class Value(msgspec.Struct, frozen=True):
    """The value at a path, with typed getters that coerce best-effort and fall back to
    their default (they never raise; a value that is there but cannot be read as the type
    asked for logs a warning naming its path, once per value). ``scan`` is the strict one.

    ``data`` is the decoded JSON (``None`` when the path holds nothing); ``secrets`` the
    dotted paths, relative to this value, of the secret leaves in it (``""`` when the
    value itself is one); ``revision`` the namespace's revision it was read at.
    """

    path: str = ""
    data: Any = None
    secrets: frozenset[str] = frozenset()
    revision: builtins.int = 0

    @property
    def exists(self) -> builtins.bool:
        """True when the path holds a value (a stored ``null`` counts as nothing)."""
        return self.data is not None

    def bytes(self) -> builtins.bytes:
        """The value as compact JSON (``null`` when missing), as Micro's ``Bytes``."""
        return msgspec.json.encode(self.data)

    def string(self, default: str = "") -> str:
        """Strings as they are; numbers and booleans as their JSON text."""
        found = _coerce.to_string(self.data)
        if found is None:
            _wrong_type(self, "a string")
            return default
        return found

    def int(self, default: builtins.int = 0) -> builtins.int:
        """Integers; floats truncated; numeric strings (``"42"`` -> 42)."""
        found = _coerce.to_int(self.data)
        if found is None:
            _wrong_type(self, "an int")
            return default
        return found

    def float(self, default: builtins.float = 0.0) -> builtins.float:
        """Numbers; numeric strings."""
        found = _coerce.to_float(self.data)
        if found is None:
            _wrong_type(self, "a float")
            return default
        return found

    def bool(self, default: builtins.bool = False) -> builtins.bool:
        """Booleans; ``"true"``/``"false"`` and Go's other spellings; non-zero numbers."""
        found = _coerce.to_bool(self.data)
        if found is None:
            _wrong_type(self, "a bool")
            return default
        return found

    def duration(self, default: timedelta = timedelta(0)) -> timedelta:
        """A :class:`~datetime.timedelta` from a Go duration string (``"1m30s"``,
        ``"250ms"``, ``"-2h"``) or a number of seconds (``90``, ``"1.5"``)."""
        found = _coerce.to_duration(self.data)
        if found is None:
            _wrong_type(self, "a duration")
            return default
        return found

    def list(self, default: builtins.list[str] | None = None) -> builtins.list[str]:
        """Micro's ``StringSlice``: an array's items as strings, or a string's
        comma-separated parts. Use :meth:`scan` for typed lists."""
        found = _coerce.to_strings(self.data)
        if found is None:
            _wrong_type(self, "a list")
            return [] if default is None else default
        return found

    def map(self, default: dict[str, str] | None = None) -> dict[str, str]:
        """Micro's ``StringMap``: an object's values as strings. Use :meth:`scan` for
        typed objects."""
        found = _coerce.to_string_map(self.data)
        if found is None:
            _wrong_type(self, "a map")
            return {} if default is None else default
        return found

    def scan(self, tp: type[T], default: Any = _MISSING) -> T:
        """The value decoded strictly into ``tp`` (a Struct, dataclass, TypedDict,
        ``list[int]`` ...). A missing value returns ``default`` when given, else raises
        NotFound; a value that does not fit ``tp`` raises BadRequest naming why."""
        if self.data is None:
            if default is not _MISSING:
                result: T = default
                return result
            raise errors.NotFound("config", f"no config value at {self.path!r}")
        try:
            return msgspec.convert(self.data, tp)
        except msgspec.ValidationError as exc:
            name = getattr(tp, "__name__", repr(tp))
            raise errors.BadRequest(
                "config", f"config value at {self.path!r} is not a {name}: {exc}"
            ) from None


class Watcher(Subscription[Value]):
    """An async iterator of the :class:`Value` of one path, to stop when no longer read.

    The first value is the path's value when the watcher is entered (``async with``) or
    first read; then one value each time the path, or anything under or above it,
    changes. A reader slower than the writes sees the latest value, not every one.
    """

    @abstractmethod
    async def next(self) -> Value:
        """The next value; raises ``StopAsyncIteration`` once stopped, and the error that
        ended the watch (after which it is stopped)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop watching; a pending :meth:`next` ends."""


class Config(ABC):
    """Config trees by namespace. Implementations: ``store`` (a JSON tree on any store)
    and ``rpc`` (the client of the ``config`` service)."""

    name: ClassVar[str]

    @abstractmethod
    async def get(
        self, path: str = "", *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> Value:
        """The value at ``path`` (``""``: the whole tree, an object; a value that does not
        exist when the namespace holds nothing).

        Never raises for a missing path: it returns a value that does not exist. Secret
        leaves read as ``"[secret]"`` unless ``secret``; with it they are decrypted, and a
        secret that cannot be (wrong key) raises :class:`SecretError`. Raises BadRequest
        for a malformed path or namespace.
        """

    @abstractmethod
    async def set(
        self, path: str, value: Any, *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        """Store ``value`` (anything JSON-encodable) at ``path``.

        An object merges key by key, deeply, into an object already there; any other
        value, or an object over a non-object, replaces. With ``secret`` every leaf of the
        value is stored encrypted. The root (``""``) takes objects only. Bad input (path,
        value, namespace, a value making the tree too large) raises a 4xx before anything
        is written; concurrent writes to other paths are never lost.
        """

    @abstractmethod
    async def delete(self, path: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Remove the value at ``path`` (``""``: the whole tree); a missing path is not an
        error. Parents left empty stay, as empty objects."""

    @abstractmethod
    def watch(
        self, path: str = "", *, secret: bool = False, namespace: str = DEFAULT_NAMESPACE
    ) -> Watcher:
        """The value at ``path`` now, then after each change (see :class:`Watcher`).

        Secrets are shown as in :meth:`get`. Raises BadRequest at once for a malformed
        path or namespace.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the implementation holds; open watchers end."""
