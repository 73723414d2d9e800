"""After a write that landed (or may have): its result read back by the business key, or `WriteOutcomeUnknown`.

Never the read's own error: a `ServerError` or `NotFound` from the read would look like a failure of the write,
and invite a resend that duplicates it. Every adapter reads its writes back through `read_back`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import AccountingError, WriteOutcomeUnknown

__all__ = ["read_back"]

T = TypeVar("T")


async def read_back(
    read: Callable[[], Awaitable[T | None]],
    unknown: Callable[[str], WriteOutcomeUnknown],
    *,
    if_absent: AccountingError | None = None,
) -> T:
    """`read()`'s result. When the read fails, `unknown(problem)`; when it finds nothing, `if_absent` (a write that
    was refused, so absence is the answer) or else `unknown(problem)`."""
    try:
        found = await read()
    except AccountingError as exc:
        raise unknown(f"reading it back failed: {exc}") from exc
    if found is None:
        raise if_absent or unknown("reading it back did not find it")
    return found
