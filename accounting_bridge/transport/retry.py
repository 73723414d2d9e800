"""Retry policy: which failures may be repeated, and how long to wait before the next attempt.

Pure decisions, no I/O; `http.Transport` runs them inside one tenacity loop.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

import attrs

__all__ = [
    "NOT_PERFORMED_STATUSES",
    "RETRYABLE_STATUSES",
    "SAFE_METHODS",
    "SETTLED_STATUSES",
    "WRITE_SAFE_STATUSES",
    "RetryPolicy",
    "parse_retry_after",
]

#: Statuses worth another attempt for a request that may be repeated.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses that prove the backend did not perform the request, so even a non-idempotent write may be resent.
WRITE_SAFE_STATUSES = frozenset({408, 429})
#: 5xx statuses that say the request was not performed at all (so they are not ambiguous for a write).
NOT_PERFORMED_STATUSES = frozenset({501, 505})
#: Statuses after which the backend has finished with the request (so one lookup tells whether it was performed).
#: After anything else ambiguous (timeout, dropped connection, 502/504 from a gateway) it may still be working.
SETTLED_STATUSES = frozenset({500, 503})
#: Methods that may be repeated without changing the outcome.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How many attempts and how long between them.

    `max_retries` more attempts after the first; backoff `initial·2ⁿ` capped at `max_backoff`, jittered to
    [75 %, 100 %]; a server-announced wait (`Retry-After`, `X-Rate-Limit-Reset`) is honoured when it is at most
    `max_retry_after` seconds, otherwise the error is raised at once; `deadline` bounds the whole call.

    After an ambiguous write failure where the backend may still be processing the request, the lookup is asked
    up to `settle_checks` times, `settle_delay` seconds apart, before the write is judged absent.
    """

    max_retries: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    deadline: float = 180.0
    settle_delay: float = 1.0
    settle_checks: int = 3

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry `retry_number` (1-based) when the server gave no hint."""
        base = min(self.initial_backoff * (2 ** (retry_number - 1)), self.max_backoff)
        jitter: float = (rng or random).random()
        return float(base * (1 - 0.25 * jitter))

    def wait(self, retry_number: int, server_hint: float | None) -> float:
        if server_hint is not None:
            return max(server_hint, 0.0)
        return self.backoff(retry_number)

    @staticmethod
    def may_repeat(method: str, idempotent: bool | None) -> bool:
        """Whether resending cannot duplicate: explicit per request, else by HTTP method."""
        if idempotent is not None:
            return idempotent
        return method.upper() in SAFE_METHODS


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: `Retry-After` (seconds or HTTP date), else `X-Rate-Limit-Reset`."""
    value = headers.get("Retry-After")
    if value is not None:
        value = value.strip()
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(when.timestamp() - (now if now is not None else time.time()), 0.0)
    reset = headers.get("X-Rate-Limit-Reset")
    if reset is not None:
        try:
            return max(float(reset.strip()), 0.0)
        except ValueError:
            return None
    return None
