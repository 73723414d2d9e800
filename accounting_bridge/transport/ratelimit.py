"""A rate limiter fed by `X-Rate-Limit-Limit/Remaining/Reset`: it waits for the reset instead of collecting 429s.

One limiter per (backend, credential) per event loop, shared by every ledger of that credential in the process.
Until the first response has told the window, only one request is let through (a probe); afterwards at most
`Remaining` requests are issued until `Reset`, counting the ones still in flight. A backend that sends no such
headers is not limited by rate, only by the concurrency cap.

Concurrency cap: every owner (a `Transport`) registers its own `max_concurrency` with `set_cap`; the credential's
cap is the smallest cap of the owners still alive (owners are held weakly, so a ledger that is garbage-collected
stops counting) and `None` when no owner has one; a limiter built directly may carry a cap of its own. A changed cap
wakes the waiters at once.

How `Remaining` is read (`RateLimiter.release`): requests still in flight are subtracted (the server had not counted
them yet), a 429 means 0, and a figure replaces the one held only when the request that carried it left *after*
the held figure arrived (so the server computed it later); a response overtaken by a newer one (answers arrive out
of order) may only lower the budget. So the budget can rise within a window when the server says so, but a stale
higher figure never hands out slots the server no longer has. When the known `Reset` has passed, the window is
forgotten and the next request is a probe again (an answer to a request let through before that cannot bring the
old window's figure back; arriving before the new figure, it lowers it by one: the server may have counted it
there). `X-Rate-Limit-Reset` is read by `parse_rate_headers` (see the rule there: seconds from now, or a Unix time
when it is that large).

Waiting: `acquire(max_wait=...)` never sleeps past `max_wait`. A known reset further away than that is raised at
once as `RateLimitWaitTooLong` (a rate limit); running out of `max_wait` while queued for a concurrency slot or
behind the probe is `SlotWaitTimeout` (a deadline expiry, not a rate limit).

The bookkeeping is synchronous (one event loop, no awaits between a check and its update), so a cancelled request
can never leave a slot or the probe taken. A waiter parks on a future of its own, awaited directly (never through
`wait_for`/`shield`, which on Python 3.10/3.11 can swallow a cancel that arrives in the same loop turn as the
wake-up), with a timer handle of its own for `max_wait` or the reset. A change wakes, oldest first, only as many
waiters as could take a ticket now (a long queue behind a small cap is not woken on every release); a woken waiter
that is cancelled before it ran hands its wake-up on. When the budget is spent, all waiters are woken once per
announced reset, to give up at once or park until it. The limiter keeps no asyncio object once nobody waits, so it
holds no reference to its event loop and a closed loop's registry entry is freed with the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import weakref
from collections.abc import Callable, Mapping

import attrs

__all__ = [
    "RateLimitWaitTooLong",
    "RateLimiter",
    "RateWindow",
    "SlotWaitTimeout",
    "Ticket",
    "existing_limiter",
    "limiter_for",
    "parse_rate_headers",
    "reset_seconds",
]


@attrs.frozen
class RateWindow:
    limit: int | None
    remaining: int
    reset: float | None  # seconds until the window resets


#: `X-Rate-Limit-Reset` values from here on are a Unix time (seconds), not a number of seconds from now: 10⁹ s
#: are 31 years, far longer than any rate-limit window, and 10⁹ as a Unix time is September 2001.
EPOCH_RESET_FROM = 1e9
#: `X-Rate-Limit-Reset` values from here on (the year 5138 as a Unix time) are nonsense and ignored, as are negative
#: and non-finite ones. A millisecond Unix time falls here too: it is ignored rather than guessed at.
RESET_IGNORED_FROM = 1e11


def parse_rate_headers(headers: Mapping[str, str], *, wall_time: float | None = None) -> RateWindow | None:
    """The window a response announces, or None when it announces none (no `X-Rate-Limit-Remaining`).

    `X-Rate-Limit-Reset` rule (the only place it is defined): a value below `EPOCH_RESET_FROM` is the number of
    seconds until the reset; a value from `EPOCH_RESET_FROM` up to `RESET_IGNORED_FROM` is the Unix time of the
    reset, read as `value - wall_time` (`time.time()` by default; a time already past means "now"); anything else —
    negative, non-finite, unparsable or larger — counts as no `Reset` at all.
    """
    remaining = _int(headers.get("X-Rate-Limit-Remaining"))
    if remaining is None:
        return None
    reset = reset_seconds(headers.get("X-Rate-Limit-Reset"), time.time() if wall_time is None else wall_time)
    return RateWindow(_int(headers.get("X-Rate-Limit-Limit")), remaining, reset)


def reset_seconds(value: str | None, wall_time: float) -> float | None:
    if value is None:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(reset) or reset < 0 or reset >= RESET_IGNORED_FROM:
        return None
    if reset >= EPOCH_RESET_FROM:
        return max(reset - wall_time, 0.0)
    return reset


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


class SlotWaitTimeout(Exception):
    """`max_wait` ran out while queued for a concurrency slot or behind the probe: a deadline, not a rate limit."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no request slot became free within {waited:.1f} s")
        self.waited = waited


@attrs.frozen
class Ticket:
    """What `acquire` hands out and `release` takes back."""

    probe: bool
    #: How many windows the limiter had observed when this ticket was issued (orders the answers; see `release`).
    seen: int = attrs.field(default=0, kw_only=True)


#: Outcome of one look at the limiter: a ticket, a known wait for the window's reset (seconds), or `None` for
#: "wait until something changes" (a concurrency slot or the probe's answer).
_Take = Ticket | float | None


class RateLimiter:
    #: When a backend says Remaining=0 without a Reset, wait this long before probing again.
    fallback_reset = 1.0

    def __init__(
        self,
        *,
        max_concurrency: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._caps: weakref.WeakKeyDictionary[object, int | None] = weakref.WeakKeyDictionary()
        self._own_cap = max_concurrency or None  # a limiter used on its own (tests, scripts) may carry a cap
        self._cap_cache: tuple[int, int | None] | None = None  # (owners counted, their cap); see `max_concurrency`
        self._headers_seen: bool | None = None  # None: not learned yet
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._observed = 0  # windows observed so far
        self._figure_from = 0  # number of the observation that set `_remaining` last (compared with `Ticket.seen`)
        self._forgot_at = 0  # number of the observation at which the last window that ended was forgotten
        self._debt = 0  # answers of such earlier requests since: the next window's first figure is lowered by them
        self._probing = False
        self._in_flight = 0
        # One future per parked caller, oldest first; empty whenever nobody waits.
        self._waiters: dict[asyncio.Future[None], None] = {}
        self._announced_reset: float | None = None  # the spent window's reset the waiters were last woken for

    @property
    def remaining(self) -> int | None:
        return self._remaining

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        """How many callers are parked in `acquire` right now."""
        return len(self._waiters)

    @property
    def max_concurrency(self) -> int | None:
        """The effective cap: the smallest cap of the registered owners still alive (None: no cap).

        Read on every request, so it is kept until `set_cap`/`drop_cap` change the owners or one of them is
        garbage-collected (the only other change: it shrinks the count of owners)."""
        owners = len(self._caps)
        cached = self._cap_cache
        if cached is not None and cached[0] == owners:
            return cached[1]
        caps = [cap for cap in self._caps.values() if cap is not None]
        if self._own_cap is not None:
            caps.append(self._own_cap)
        cap = min(caps, default=None)
        self._cap_cache = (owners, cap)
        return cap

    # --- owners and their caps --------------------------------------------------------------------------------

    def set_cap(self, owner: object, max_concurrency: int | None) -> None:
        """Register `owner`'s concurrency cap (held weakly; calling it again replaces the cap)."""
        cap = max_concurrency if max_concurrency and max_concurrency > 0 else None
        if owner in self._caps and self._caps[owner] == cap:
            return
        self._caps[owner] = cap
        self._cap_cache = None
        self._wake_waiters()

    def drop_cap(self, owner: object) -> None:
        """Forget `owner`'s cap (a closed transport); unknown owners are ignored."""
        self._cap_cache = None
        if self._caps.pop(owner, None) is not None:
            self._wake_waiters()

    # --- acquire / release ------------------------------------------------------------------------------------

    async def acquire(self, *, max_wait: float | None = None) -> Ticket:
        """Wait for a slot, `max_wait` seconds at most in all.

        Raises `RateLimitWaitTooLong` when a known reset is further away than the time left, `SlotWaitTimeout` when
        the time runs out queued for a concurrency slot or behind the probe. A cancel always propagates: a
        cancelled call never returns a ticket, and nothing is taken before the ticket is returned.
        """
        started = self._clock()
        give_up_at = None if max_wait is None else started + max_wait
        while True:
            taken = self._try_take()
            if isinstance(taken, Ticket):
                return taken
            timeout = taken
            if give_up_at is not None:
                left = give_up_at - self._clock()
                if taken is not None and taken > left:
                    raise RateLimitWaitTooLong(taken)
                if left <= 0:
                    raise SlotWaitTimeout(self._clock() - started)
                timeout = left if taken is None else taken
            await self._wait_for_change(timeout)

    def release(self, ticket: Ticket, headers: Mapping[str, str] | None, status: int | None = None) -> None:
        """Report the outcome of an acquired request (`headers` None when no response arrived).

        The announced `Remaining` replaces the budget held only when this request left after the held figure
        arrived; otherwise (an answer overtaken by a newer one) it may only lower it. Either way the requests still
        in flight are subtracted and a 429 means no budget.
        """
        try:
            self._in_flight -= 1
            if ticket.probe:
                self._probing = False
            if headers is not None:
                self._observe(ticket, headers, status)
        finally:
            self._wake_waiters()

    # --- internals --------------------------------------------------------------------------------------------

    def _try_take(self) -> _Take:
        reset_wait = self._reset_wait()
        if reset_wait is not None:
            return reset_wait
        if self._available() == 0:
            return None
        if self._headers_seen is False:
            return self._issue(probe=False)
        if self._remaining is None:
            self._probing = True
            return self._issue(probe=True)
        self._remaining -= 1
        return self._issue(probe=False)

    def _reset_wait(self) -> float | None:
        """Seconds until the reset when the window's budget is spent, else None (forgets a window that is over)."""
        now = self._clock()
        if self._reset_at is not None and now >= self._reset_at:
            self._remaining, self._reset_at = None, None  # the window is over: learn the next one
            self._observed += 1
            self._forgot_at = self._observed  # tickets issued before may not bring the old figure back
            self._debt = 0
        if self._headers_seen is False or self._remaining != 0:
            return None
        if self._reset_at is None:
            self._reset_at = now + self.fallback_reset
        return max(self._reset_at - now, 0.0)

    def _available(self) -> int | None:
        """How many tickets could be handed out right now, the budget not being spent (None: no limit)."""
        cap = self.max_concurrency
        room = None if cap is None else max(cap - self._in_flight, 0)
        if self._headers_seen is False:
            rate = None
        elif self._remaining is None:
            rate = 0 if self._probing else 1
        else:
            rate = self._remaining
        if room is None or rate is None:
            return rate if room is None else room
        return min(room, rate)

    def _issue(self, *, probe: bool) -> Ticket:
        self._in_flight += 1
        return Ticket(probe, seen=self._observed)

    async def _wait_for_change(self, timeout: float | None) -> None:
        """Park until woken or `timeout` seconds; a cancel propagates unchanged (the future is awaited directly)."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        self._waiters[woken] = None
        timer = None if timeout is None else loop.call_later(timeout, self._wake, woken)
        try:
            await woken
        except BaseException:
            self._waiters.pop(woken, None)
            if woken.done() and not woken.cancelled():
                self._wake_waiters()  # the wake-up this caller got is lost with it: hand it on
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.pop(woken, None)

    def _wake_waiters(self) -> None:
        """After a change, wake as many waiters (oldest first) as could take a ticket now, not the whole queue.

        When the budget is spent, everyone is woken once per announced reset: each either gives up at once
        (`RateLimitWaitTooLong`) or parks again with a timer for that reset.
        """
        if not self._waiters:
            return
        if self._reset_wait() is not None:
            if self._reset_at == self._announced_reset:
                return
            self._announced_reset = self._reset_at
            count = None
        else:
            count = self._available()
        for woken in list(itertools.islice(self._waiters, count)):
            self._wake(woken)

    def _wake(self, woken: asyncio.Future[None]) -> None:
        self._waiters.pop(woken, None)
        if not woken.done():
            woken.set_result(None)

    def _observe(self, ticket: Ticket, headers: Mapping[str, str], status: int | None) -> None:
        window = parse_rate_headers(headers, wall_time=self._wall_clock())
        if window is None:
            # A 429 without a window leaves the waiting to the transport's backoff.
            if self._headers_seen is None and status != 429:
                self._headers_seen = False
            return
        self._headers_seen = True
        self._observed += 1
        now = self._clock()
        # Requests still in flight were not yet counted by the backend when it computed `remaining`.
        budget = 0 if status == 429 else max(window.remaining - self._in_flight, 0)
        reset_at = None if window.reset is None else now + window.reset
        held = self._remaining
        if held is None and ticket.seen < self._forgot_at:
            # A request let through before the window was forgotten: its answer may describe the old window, or the
            # server counted it in the new one after the probe's answer was computed: it lowers the new figure.
            self._debt += 1
        elif held is None or ticket.seen >= self._figure_from:  # nothing held, or this answer is newer
            if held is None:
                budget, self._debt = max(budget - self._debt, 0), 0
            self._remaining, self._figure_from = budget, self._observed
            self._reset_at = reset_at
        else:  # overtaken by a newer answer: it may only lower the budget
            if budget < held:
                self._remaining = budget
            # Still the latest answer seen: a request reserved before it may have been counted by the server before
            # this one, so its figure may miss this request and must not replace the budget.
            self._figure_from = self._observed
            if self._reset_at is None:
                self._reset_at = reset_at
        if self._remaining == 0 and self._reset_at is None:
            self._reset_at = now + self.fallback_reset


_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], RateLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter_for(backend: str, credential: str, *, shared_state: str | None = None) -> RateLimiter:
    """The process-wide limiter of one (backend, credential) on the running event loop (created on first use).

    With `shared_state` (a redis:// URL) the budget is the fleet's, kept in Redis
    (`accounting_bridge.fleet.redis_limiter`), with this process's own limiter as the fallback when Redis is away.
    Concurrency caps are not given here: each owner registers its own with `RateLimiter.set_cap`.
    """
    per_loop = _LIMITERS.setdefault(asyncio.get_running_loop(), {})
    key: tuple[str, ...] = (backend, credential) if shared_state is None else (backend, credential, shared_state)
    limiter = per_loop.get(key)
    if limiter is None:
        if shared_state is None:
            limiter = RateLimiter()
        else:
            from ..fleet.redis_limiter import SharedRateLimiter
            from ..fleet.redis_state import SharedState

            fallback = limiter_for(backend, credential)
            limiter = SharedRateLimiter(SharedState.parse(shared_state), backend, credential, fallback)
        per_loop[key] = limiter
    return limiter


def existing_limiter(backend: str, credential: str, *, shared_state: str | None = None) -> RateLimiter | None:
    """The limiter of (backend, credential) on the running event loop, if one was created; never creates one."""
    per_loop = _LIMITERS.get(asyncio.get_running_loop())
    key: tuple[str, ...] = (backend, credential) if shared_state is None else (backend, credential, shared_state)
    return None if per_loop is None else per_loop.get(key)
