"""Reading the answer to a write that the server accepted.

A 2xx answer means the write landed. If its body then cannot be decoded (not JSON, no numeric `xid`, a list of the
wrong length), the object exists but its id is unknown: reporting that as a plain `ResponseError` would invite a
retry that duplicates it (the Multi-Regnskab writes are not idempotent). `read_written` turns any decoding failure
of such an answer into `WriteOutcomeUnknown` carrying the caller's business reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from accounting_bridge.errors import AccountingError, WriteOutcomeUnknown
from accounting_bridge.transport.http import Response

__all__ = ["read_written", "unreadable_answer"]

T = TypeVar("T")

#: what a decoder of a JSON answer may raise besides the error tree (a defensive net: wire raises ResponseError)
_DECODING_ERRORS = (AccountingError, ValueError, LookupError, TypeError)


def unreadable_answer(
    response: Response, what: str, problem: str, *, backend: str, reference: str | None
) -> WriteOutcomeUnknown:
    """The `WriteOutcomeUnknown` for a write whose accepted (2xx) answer could not be read."""
    return WriteOutcomeUnknown(
        f"{what}: the server accepted the write (status {response.status}) but its answer could not be read "
        f"({problem}); the object was most likely stored, with an unknown id — do not resend without checking",
        backend=backend,
        reference=reference,
        request_id=response.request_id,
    )


def read_written(
    response: Response,
    decode: Callable[[Response], T],
    *,
    what: str,
    backend: str,
    reference: str | None,
) -> T:
    """`decode(response)`, or `WriteOutcomeUnknown(reference=reference)` when that fails."""
    try:
        return decode(response)
    except _DECODING_ERRORS as exc:
        problem = exc.message if isinstance(exc, AccountingError) else f"{type(exc).__name__}: {exc}"
        raise unreadable_answer(response, what, problem, backend=backend, reference=reference) from None

