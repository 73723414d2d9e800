"""Exit codes scripts can rely on, and the one-line error a failed command prints."""

from __future__ import annotations

import enum

from ..errors import (
    AccountingError,
    AuthenticationError,
    ConfigurationError,
    PermissionDenied,
    RateLimited,
    ServerError,
    TransportError,
    UnsupportedOperation,
    ValidationError,
)

__all__ = ["UNAVAILABLE", "CliError", "ExitCode", "exit_code_for", "one_line"]


class ExitCode(enum.IntEnum):
    OK = 0  # everything done
    FAILED = 1  # some items failed (they did not land)
    UNSETTLED = 2  # some items are unknown or in conflict: look before rerunning
    USAGE = 64  # usage or input error (EX_USAGE)
    UNAVAILABLE = 69  # backend unreachable, or authentication refused (EX_UNAVAILABLE)
    INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """A problem the user fixes: `message` names what to fix, `code` is the exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


#: The backend cannot be reached, or refuses the credentials: retrying the same command will not help.
UNAVAILABLE = (AuthenticationError, PermissionDenied, TransportError)
_UNAVAILABLE = (*UNAVAILABLE, ServerError, RateLimited)
_USAGE = (ConfigurationError, ValidationError, UnsupportedOperation)


def exit_code_for(exc: BaseException) -> ExitCode:
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, _UNAVAILABLE):
        return ExitCode.UNAVAILABLE
    if isinstance(exc, _USAGE):
        return ExitCode.USAGE
    return ExitCode.FAILED


def one_line(exc: BaseException) -> str:
    """The error as one readable line. SDK errors are already redacted; nothing else is added to them."""
    if isinstance(exc, CliError):
        text = exc.message
    elif isinstance(exc, AccountingError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())
