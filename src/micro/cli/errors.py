"""How the CLI reports failures: Micro's messages and exit codes (reference §3.1).

=====  ==========================================================================
exit   when
=====  ==========================================================================
1      usage errors, unknown commands, timeouts, plain errors ("Not found")
2      401: not authorized
3      a malformed endpoint name
4      the service is not found, or the server cannot be reached
5      the service has no such endpoint
127    any other error the platform returned (its detail is printed)
128    anything unexpected (never a traceback)
=====  ==========================================================================
"""

from __future__ import annotations

import re

import click

from micro import errors

__all__ = ["CliError", "detailed", "render"]

# What a service's server answers for an endpoint it lacks, and for a name it does not
# serve (reached directly, not through the proxy).
_SERVICE_NOT_FOUND = re.compile(r"service (\S+) not found")


class CliError(click.ClickException):
    """A failure to print as one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a ClassVar; ours vary

    def show(self, file: object = None) -> None:
        click.echo(self.format_message(), err=True)


def render(exc: BaseException, *, proxy: str = "") -> CliError:
    """The CLI error for an exception raised by a command."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, errors.ConnectionError) and proxy and proxy in exc.detail:
        return CliError(f"Failed to connect to micro server at {proxy}", 4)
    if isinstance(exc, errors.MicroError):
        if isinstance(exc, errors.NotFound):
            missing = _missing(exc)
            if missing is not None:
                return missing
        if isinstance(exc, errors.Timeout):
            return CliError("Request timed out", 1)
        if isinstance(exc, errors.Unauthorized):
            return CliError("Not authorized to perform this request", 2)
        return CliError(_capital(exc.detail or exc.status), 127)
    if isinstance(exc, OSError) and exc.strerror:
        return CliError(_capital(exc.strerror), 1)
    if isinstance(exc, ValueError | KeyError | OSError):
        return CliError(_capital(str(exc).strip("'\"")), 1)
    return CliError(f"Unexpected error: {exc}", 128)


def detailed(exc: BaseException, *, proxy: str = "") -> CliError:
    """As :func:`render`, but an error the platform answered with is shown in its own
    words, ``Error: <detail>`` (as Micro's auth commands do: ``Error: A rule with this ID
    already exists``), with the exit code :func:`render` gives it. Connection failures,
    timeouts and unknown services read as everywhere else."""
    rendered = render(exc, proxy=proxy)
    if (
        not isinstance(exc, errors.MicroError)
        or isinstance(exc, errors.ConnectionError | errors.Timeout)
        or rendered.exit_code in (3, 4, 5)
    ):
        return rendered
    return CliError(f"Error: {_capital(exc.detail or exc.status)}", rendered.exit_code)


def _missing(exc: errors.NotFound) -> CliError | None:
    """Exit 5 for an unknown endpoint, 4 for an unknown service; ``None`` for other 404s
    (a handler's own "no such user" is its business, printed as such)."""
    match = _SERVICE_NOT_FOUND.fullmatch(exc.detail)
    if match is not None and exc.id in (
        "micro.proxy",
        "micro.server",
        "registry.Registry.GetService",
    ):
        return CliError(f'Service "{match[1]}" not found', 4)
    if exc.id == "micro.server":
        return CliError(_capital(exc.detail), 5)
    return None


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
