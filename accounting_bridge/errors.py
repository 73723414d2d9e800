"""The one error tree of accounting_bridge: every failure a caller can see is one of these."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "AccountingError",
    "AuthenticationError",
    "BackendError",
    "ConfigurationError",
    "Conflict",
    "DeadlineExceeded",
    "FieldError",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ResponseError",
    "ServerError",
    "TransportError",
    "Unprocessable",
    "UnsupportedOperation",
    "ValidationError",
    "WriteOutcomeUnknown",
    "error_for_status",
    "ledger_method",
    "register_credential_settings",
]


class AccountingError(Exception):
    """Base of every error raised by accounting_bridge.

    `backend` names the adapter (when known); the message never contains a secret.
    """

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend

    def __str__(self) -> str:
        prefix = f"[{self.backend}] " if self.backend else ""
        return prefix + self.message


@attrs.frozen
class FieldError:
    """One problem with one field, `path` like ``lines[2].quantity``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ValidationError(AccountingError, ValueError):
    """Input that cannot be sent: raised before any I/O, with one `FieldError` per problem."""

    def __init__(
        self, errors: Sequence[FieldError] | FieldError, *, backend: str | None = None, model: str | None = None
    ) -> None:
        self.errors: tuple[FieldError, ...] = (errors,) if isinstance(errors, FieldError) else tuple(errors)
        self.model = model
        what = f"invalid {model}" if model else "invalid input"
        super().__init__(f"{what}: " + "; ".join(str(e) for e in self.errors), backend=backend)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(e.path for e in self.errors)

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors with their paths nested under `prefix` (``lines[0]`` + ``quantity``)."""
        return ValidationError(
            [FieldError(_join(prefix, e.path), e.message) for e in self.errors], backend=self.backend, model=self.model
        )


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


#: neutral operations whose `Ledger` method is not spelled like the capability
_LEDGER_METHODS = {
    "companies.list": "ledger.companies()",
    "raw": "ledger.raw()",
    "invoices.create_draft": "ledger.invoices.create()",
}


def ledger_method(operation: str) -> str:
    """How a caller spells `operation` (a capability value like ``invoices.create``): ``ledger.invoices.create()``."""
    if operation in _LEDGER_METHODS:
        return _LEDGER_METHODS[operation]
    parts = operation.split(".")
    if len(parts) == 2 and all(part.isidentifier() for part in parts):
        return f"ledger.{operation}()"
    return operation


class UnsupportedOperation(AccountingError, NotImplementedError):
    """The backend has no such operation; raised before any I/O.

    `operation` is the capability value (``companies.list``); `method` is what the caller wrote
    (``ledger.companies()``). The message points to `ledger.capabilities`, which tells in advance.
    """

    def __init__(self, operation: str, *, backend: str, reason: str | None = None, method: str | None = None) -> None:
        self.operation = operation
        self.method = method or ledger_method(operation)
        text = f"{self.method} is not supported by the {backend!r} backend"
        if reason:
            text += f": {reason}"
        else:
            text += "; check `ledger.capabilities` (or `ledger.supports(...)`) before calling it"
        super().__init__(text, backend=backend)


class ConfigurationError(AccountingError):
    """Wrong or missing settings, unknown adapter name, a misuse of the SDK itself."""


class TransportError(AccountingError):
    """The request did not complete: connection refused or dropped, timeout, overall deadline."""


class DeadlineExceeded(TransportError):
    """The call's `deadline` ran out (while waiting for a slot, the credential, or the answer) before it could
    finish. Raised for reads and for writes that were not sent or may be repeated; a write that may already have
    been sent is `WriteOutcomeUnknown` instead. `deadline` is the call's deadline in seconds."""

    def __init__(self, message: str, *, backend: str | None = None, deadline: float | None = None) -> None:
        self.deadline = deadline
        super().__init__(message, backend=backend)


class WriteOutcomeUnknown(AccountingError):
    """A write may or may not have landed and it could not be resolved.

    `reference` is the caller's business key (invoice number, registration reference) to resolve it with.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        reference: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.reference = reference
        self.request_id = request_id
        extra = f" (reference {reference!r})" if reference else ""
        super().__init__(message + extra, backend=backend)


class BackendError(AccountingError):
    """The backend answered with an error. Carries the HTTP status, the request id and the decoded detail."""

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        detail: Any = None,
    ) -> None:
        self.status = status
        self.request_id = request_id
        self.detail = detail
        super().__init__(message, backend=backend)

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


#: per backend, the settings a refused credential comes from (names only, never values): filled by `registry`
_CREDENTIAL_SETTINGS: dict[str, str] = {}
#: backends that refuse a wrong credential with 403 rather than 401 (Run my Accounts: a wrong key or mandant)
_REFUSED_WITH_403: set[str] = set()


def register_credential_settings(backend: str, settings: str | None, *, refused_with_403: bool = False) -> None:
    """Say which settings hold `backend`'s credential, e.g. ``"client_id and client_secret"``, and whether the
    backend answers a wrong one with 403 (then a `PermissionDenied` names them too)."""
    if settings:
        _CREDENTIAL_SETTINGS[backend] = settings
    if refused_with_403:
        _REFUSED_WITH_403.add(backend)


def _with_credential_hint(text: str, backend: str | None) -> str:
    settings = _CREDENTIAL_SETTINGS.get(backend or "")
    return f"{text} (check the settings {settings})" if settings else text


class AuthenticationError(BackendError):
    """401, or a token/login exchange that was refused. Its text names the settings to check, never their values."""

    def __str__(self) -> str:
        return _with_credential_hint(super().__str__(), self.backend)


class PermissionDenied(BackendError):
    """403 (and plan or feature limits the backend reports that way). On a backend that refuses a wrong credential
    with 403 its text names the settings to check, never their values."""

    def __str__(self) -> str:
        text = super().__str__()
        return _with_credential_hint(text, self.backend) if self.backend in _REFUSED_WITH_403 else text


class NotFound(BackendError):
    """404."""


class Conflict(BackendError):
    """409, or a create whose business key already exists with different content."""


class Unprocessable(BackendError):
    """400/422: the backend refused the content. `fields` lists what the backend named."""

    def __init__(self, message: str, *, fields: Iterable[FieldError] = (), **kwargs: Any) -> None:
        self.fields = tuple(fields)
        super().__init__(message, **kwargs)


class RateLimited(BackendError):
    """429 that could not be waited out; `retry_after` in seconds when the backend said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(BackendError):
    """5xx."""


class ResponseError(BackendError):
    """A response body that could not be decoded (malformed JSON/XML, unexpected shape, entities in XML)."""


_BY_STATUS: dict[int, type[BackendError]] = {
    400: Unprocessable,
    401: AuthenticationError,
    402: PermissionDenied,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: RateLimited,
}


def error_for_status(status: int) -> type[BackendError]:
    """The error class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, BackendError)
