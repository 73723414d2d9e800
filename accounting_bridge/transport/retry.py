"""Retry policy: which failures may be repeated, and how long to wait before the next attempt.

Pure decisions, no I/O; `http.Transport` runs them inside one tenacity loop.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from collections.abc import Mapping

import attrs

from .ratelimit import reset_seconds

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


#: A server-announced wait longer than this (a year) is nonsense, not a rate limit: it is ignored.
ABSURD_WAIT = 366 * 86400.0


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, or None when it asks nothing usable.

    Rule: `Retry-After` first, as seconds (a finite number from 0 up to `ABSURD_WAIT`) or as an HTTP date
    (`-0000` and zone-less dates are UTC; a date already past means 0). A `Retry-After` that is negative,
    non-finite (`nan`, `inf`), further away than `ABSURD_WAIT` or unreadable is ignored, and
    `X-Rate-Limit-Reset` is read instead with the limiter's rule (`ratelimit.parse_rate_headers`: seconds from
    now, or a Unix time when the value is that large). `now` is the wall-clock time (`time.time()` by default).
    """
    wall_time = time.time() if now is None else now
    wait = _retry_after_seconds(headers.get("Retry-After"), wall_time)
    if wait is None:
        wait = reset_seconds(headers.get("X-Rate-Limit-Reset"), wall_time)
    if wait is None or wait > ABSURD_WAIT:
        return None
    return wait


def _retry_after_seconds(value: str | None, wall_time: float) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _http_date_seconds(value, wall_time)
    if not math.isfinite(seconds) or seconds < 0 or seconds > ABSURD_WAIT:
        return None
    return seconds


def _http_date_seconds(value: str, wall_time: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" (RFC 5322: UTC, source zone unknown) comes back naive
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(when.timestamp() - wall_time, 0.0)
