"""A rate limiter fed by `X-Rate-Limit-Limit/Remaining/Reset`: it waits for the reset instead of collecting 429s.

One limiter per (backend, credential) per event loop, shared by every ledger of that credential in the process.
Until the first response has told the window, only one request is let through (a probe); afterwards at most
`Remaining` requests are issued until `Reset`, counting the ones still in flight. A backend that sends no such
headers is not limited (beyond the optional `max_concurrency`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable, Mapping

import attrs

__all__ = ["RateLimiter", "RateWindow", "limiter_for", "parse_rate_headers"]


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


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


class RateLimiter:
    #: When a backend says Remaining=0 without a Reset, wait this long before probing again.
    fallback_reset = 1.0

    def __init__(self, *, max_concurrency: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = asyncio.Condition()
        self._concurrency = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._headers_seen: bool | None = None  # None: not learned yet
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._probing = False
        self._in_flight = 0

    @property
    def remaining(self) -> int | None:
        return self._remaining

    async def acquire(self) -> None:
        if self._concurrency is not None:
            await self._concurrency.acquire()
        try:
            async with self._cond:
                await self._take_slot()
                self._in_flight += 1
        except BaseException:
            if self._concurrency is not None:
                self._concurrency.release()
            raise

    async def _take_slot(self) -> None:
        while True:
            now = self._clock()
            if self._reset_at is not None and now >= self._reset_at:
                self._remaining, self._reset_at = None, None  # the window is over: learn the next one
            if self._headers_seen is False:
                return
            if self._remaining is None:
                if not self._probing:
                    self._probing = True
                    return
                await self._cond.wait()
            elif self._remaining > 0:
                self._remaining -= 1
                return
            else:
                if self._reset_at is None:
                    self._reset_at = now + self.fallback_reset
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), timeout=max(self._reset_at - now, 0.0))

    async def release(self, headers: Mapping[str, str] | None, status: int | None = None) -> None:
        """Report the outcome of an acquired request (`headers` None when no response arrived)."""
        try:
            async with self._cond:
                self._in_flight -= 1
                self._probing = False
                if headers is not None:
                    self._observe(headers, status)
                self._cond.notify_all()
        finally:
            if self._concurrency is not None:
                self._concurrency.release()

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
