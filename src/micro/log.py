"""Structured logging for services, the server and the CLI, and the ring of recent
records that ``Debug.Log`` serves.

In a service::

    import micro

    micro.log.info("charged order", order=order.id, amount=order.total)
    log = micro.log.get("billing.refunds")     # a named logger, the same fields
    log.warning("refund refused", order=7)

Lines look like Micro's, with the fields after the message::

    2020-10-06 17:52:21  level=info service=billing charged order order=7 amount=12.5

or one JSON object per line with ``MICRO_LOG_FORMAT=json`` (``service``, the fields and,
while a traced call is handled, ``trace_id``/``span_id`` as keys of their own). Plain
``logging`` records (``logging.getLogger(__name__).info(...)``) get the same service and
trace fields: they are added by a filter on the handlers, not by the loggers.

Trace ids come from :mod:`micro.trace` once something has imported it: each record asks
its ``current_ids()`` (``(trace_id, span_id)``, or ``None`` outside a trace), so logging
never imports tracing and costs one dict lookup when nobody traces. Other context (a
request id, a tenant) comes from functions registered with :func:`add_context`, which
return the fields of the current moment.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "ContextProvider",
    "Logger",
    "RingHandler",
    "add_context",
    "configure",
    "debug",
    "error",
    "exception",
    "get",
    "info",
    "remove_context",
    "ring",
    "set_service",
    "warning",
]

ContextProvider = Callable[[], Mapping[str, Any] | None]
"""Returns the fields every record logged now should carry (``None`` or ``{}``: none)."""

_FIELDS: Final = "micro_fields"
"""The attribute of a ``LogRecord`` holding its fields (given, then service and trace)."""

_providers: list[ContextProvider] = []
_service: str = os.environ.get("MICRO_SERVICE_NAME", "")


def add_context(provider: ContextProvider) -> None:
    """Add the fields ``provider`` returns to every record from now on. Adding the same
    function twice adds it once."""
    if provider not in _providers:
        _providers.append(provider)


def remove_context(provider: ContextProvider) -> None:
    """Stop asking ``provider`` (no error when it was not added)."""
    if provider in _providers:
        _providers.remove(provider)


def set_service(name: str) -> None:
    """Name the service every record of this process is logged for (``MICRO_SERVICE_NAME``
    by default; a :class:`micro.Service` sets its own name when it runs)."""
    global _service
    _service = name


class _Context(logging.Filter):
    """Puts the service and the providers' fields into each record, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "micro_context", False):
            return True
        record.micro_context = True
        fields: dict[str, Any] = {}
        if _service:
            fields["service"] = _service
        trace = sys.modules.get("micro.trace")
        if trace is not None:
            ids = trace.current_ids()
            if ids is not None:
                fields["trace_id"], fields["span_id"] = ids
        for provider in _providers:
            try:
                extra = provider()
            except Exception:  # a broken provider must not lose the record it decorates
                continue
            if extra:
                fields.update(extra)
        fields.update(getattr(record, _FIELDS, None) or {})
        setattr(record, _FIELDS, fields)
        return True


class Logger:
    """A named logger whose calls take fields as keywords: ``log.info("paid", order=7)``.

    A thin face over :mod:`logging` (records go to the same handlers, levels are the same),
    so a service mixing both logs one way.
    """

    __slots__ = ("_logger",)

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    @property
    def name(self) -> str:
        """The :mod:`logging` name."""
        return self._logger.name

    def _log(self, level: int, msg: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, msg, exc_info=exc_info, extra={_FIELDS: fields}, stacklevel=3)

    def debug(self, msg: str, **fields: Any) -> None:
        """Log at debug level."""
        self._log(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        """Log at info level."""
        self._log(logging.INFO, msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        """Log at warning level."""
        self._log(logging.WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        """Log at error level."""
        self._log(logging.ERROR, msg, fields)

    def exception(self, msg: str, **fields: Any) -> None:
        """Log at error level with the exception being handled."""
        self._log(logging.ERROR, msg, fields, exc_info=True)


def get(name: str = "micro.app") -> Logger:
    """A structured logger; ``name`` is its :mod:`logging` name (levels, filtering)."""
    return Logger(name)


_default = Logger("micro.app")
debug = _default.debug
info = _default.info
warning = _default.warning
error = _default.error
exception = _default.exception


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's fields (service, trace, given), whether or not it passed a handler's filter."""
    _Context().filter(record)
    fields: dict[str, Any] = getattr(record, _FIELDS)
    return fields


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or "=" in text or not text) else text


class RingHandler(logging.Handler):
    """Keeps the last ``capacity`` records for ``Debug.Log``."""

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__()
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self.addFilter(_Context())

    def emit(self, record: logging.LogRecord) -> None:
        metadata = {"level": record.levelname.lower(), "logger": record.name}
        metadata.update({k: _text(v) for k, v in fields_of(record).items()})
        self.records.append(
            {"timestamp": int(record.created), "metadata": metadata, "message": record.getMessage()}
        )


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        fields = fields_of(record)
        service = f"service={_text(fields['service'])} " if "service" in fields else ""
        rest = "".join(f" {k}={_text(v)}" for k, v in fields.items() if k != "service")
        line = f"{stamp}  level={record.levelname.lower()} {service}{record.getMessage()}{rest}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


ring = RingHandler()
_configured = False


def configure(level: str = "info", fmt: str = "text", *, service: str | None = None) -> None:
    """Send log records to stderr in the chosen format, once per process; ``service``
    names the service they are logged for."""
    global _configured
    if service:
        set_service(service)
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Context())
    handler.setFormatter(_JSONFormatter() if fmt == "json" else _TextFormatter())
    root.addHandler(handler)
    root.addHandler(ring)
