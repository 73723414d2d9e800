"""A rate limiter fed by `X-Rate-Limit-Limit/Remaining/Reset`: it waits for the reset instead of collecting 429s.

One limiter per (backend, credential) per event loop, shared by every ledger of that credential in the process.
Until the first response has told the window, only one request is let through (a probe); afterwards at most
`Remaining` requests are issued until `Reset`, counting the ones still in flight. A backend that sends no such
headers is not limited (beyond the optional `max_concurrency`). A wait longer than the caller allows is not
slept: `RateLimitWaitTooLong` tells how long it would be.

The bookkeeping is synchronous (one event loop, no awaits between a check and its update), so a cancelled request
can never leave a slot or the probe taken; waiters sleep on a broadcast future that every change replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable, Mapping

import attrs

__all__ = ["RateLimitWaitTooLong", "RateLimiter", "RateWindow", "Ticket", "limiter_for", "parse_rate_headers"]


@attrs.frozen
class RateWindow:
    limit: int | None
    remaining: int
    reset: float | None  # seconds until the window resets


def parse_rate_headers(headers: Mapping[str, str]) -> RateWindow | None:
    remaining = _int(headers.get("X-Rate-Limit-Remaining"))
    if remaining is None:
        return None
    reset = _int(headers.get("X-Rate-Limit-Reset"))
    return RateWindow(_int(headers.get("X-Rate-Limit-Limit")), remaining, None if reset is None else float(reset))


#: Larger header values are nonsense (and would overflow float arithmetic): read them as this cap.
_HEADER_CAP = 10**9


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(min(int(value.strip()), _HEADER_CAP), -_HEADER_CAP)
    except ValueError:
        return None


class RateLimitWaitTooLong(Exception):
    """The budget is spent and the reset is further away than the caller may wait."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limit budget spent; it resets in {wait:.0f} s")
        self.wait = wait


@attrs.frozen
class Ticket:
    """What `acquire` hands out and `release` takes back."""

    probe: bool


class RateLimiter:
    #: When a backend says Remaining=0 without a Reset, wait this long before probing again.
    fallback_reset = 1.0

    def __init__(self, *, max_concurrency: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._concurrency = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._headers_seen: bool | None = None  # None: not learned yet
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._probing = False
        self._in_flight = 0
        self._changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def remaining(self) -> int | None:
        return self._remaining

    async def acquire(self, *, max_wait: float | None = None) -> Ticket:
        """Wait for a slot, `max_wait` seconds at most in all (`RateLimitWaitTooLong` when that cannot do)."""
        give_up_at = None if max_wait is None else self._clock() + max_wait
        if self._concurrency is not None:
            await self._concurrency.acquire()
        try:
            while True:
                taken = self._try_take()
                if isinstance(taken, Ticket):
                    self._in_flight += 1
                    return taken
                timeout = taken
                if give_up_at is not None:
                    left = give_up_at - self._clock()
                    if (taken is not None and taken > left) or left <= 0:
                        raise RateLimitWaitTooLong(taken if taken is not None else max(left, 0.0))
                    timeout = left if taken is None else taken
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._changed), timeout=timeout)
        except BaseException:
            if self._concurrency is not None:
                self._concurrency.release()
            raise

    def _try_take(self) -> Ticket | float | None:
        """A ticket, or how long to wait (seconds; None = until something changes)."""
        now = self._clock()
        if self._reset_at is not None and now >= self._reset_at:
            self._remaining, self._reset_at = None, None  # the window is over: learn the next one
        if self._headers_seen is False:
            return Ticket(probe=False)
        if self._remaining is None:
            if self._probing:
                return None
            self._probing = True
            return Ticket(probe=True)
        if self._remaining > 0:
            self._remaining -= 1
            return Ticket(probe=False)
        if self._reset_at is None:
            self._reset_at = now + self.fallback_reset
        return max(self._reset_at - now, 0.0)

    def release(self, ticket: Ticket, headers: Mapping[str, str] | None, status: int | None = None) -> None:
        """Report the outcome of an acquired request (`headers` None when no response arrived)."""
        try:
            self._in_flight -= 1
            if ticket.probe:
                self._probing = False
            if headers is not None:
                self._observe(headers, status)
        finally:
            if self._concurrency is not None:
                self._concurrency.release()
            changed, self._changed = self._changed, asyncio.get_running_loop().create_future()
            changed.set_result(None)

    def _observe(self, headers: Mapping[str, str], status: int | None) -> None:
        window = parse_rate_headers(headers)
        if window is None:
            # A 429 without a window leaves the waiting to the transport's backoff.
            if self._headers_seen is None and status != 429:
                self._headers_seen = False
            return
        self._headers_seen = True
        now = self._clock()
        # Requests still in flight were not yet counted by the backend when it computed `remaining`.
        budget = max(window.remaining - self._in_flight, 0)
        if status == 429:
            budget = 0
        self._remaining = budget if self._remaining is None else min(self._remaining, budget)
        if window.reset is not None:
            self._reset_at = now + window.reset
        elif self._remaining == 0:
            self._reset_at = now + self.fallback_reset


_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], RateLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter_for(backend: str, credential: str, *, max_concurrency: int | None = None) -> RateLimiter:
    """The process-wide limiter of one (backend, credential) on the running event loop."""
    per_loop = _LIMITERS.setdefault(asyncio.get_running_loop(), {})
    key = (backend, credential)
    limiter = per_loop.get(key)
    if limiter is None:
        limiter = per_loop[key] = RateLimiter(max_concurrency=max_concurrency)
    return limiter

