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

import click

from micro import errors

__all__ = ["CliError", "render"]


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
        if isinstance(exc, errors.NotFound) and exc.id == "micro.proxy":
            name = exc.detail.removeprefix("service ").removesuffix(" not found")
            return CliError(f'Service "{name}" not found', 4)
        if isinstance(exc, errors.NotFound) and exc.id == "micro.server":
            return CliError(_capital(exc.detail), 5)
        if isinstance(exc, errors.Timeout):
            return CliError("Request timed out", 1)
        if isinstance(exc, errors.Unauthorized):
            return CliError("Not authorized to perform this request", 2)
        return CliError(_capital(exc.detail or exc.status), 127)
    if isinstance(exc, ValueError | KeyError | OSError):
        return CliError(_capital(str(exc).strip("'\"")), 1)
    return CliError(f"Unexpected error: {exc}", 128)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
