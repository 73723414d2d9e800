"""A rate limiter whose budget lives in Redis: one `X-Rate-Limit-*` window per (backend, credential) for a fleet.

Same rules as the in-process `RateLimiter` (see `transport/ratelimit.py`), kept in one Redis hash and changed only by
Lua scripts (atomic): until a response has told the window, one probe request is out; afterwards a request is let
through only by *reserving* one unit of `Remaining` (so N processes never all spend the last request); an answer's
`Remaining` minus the reservations still in flight (every process's) replaces the figure when it is newer, else may
only lower it; a spent budget waits for `Reset`. Once `Reset` has passed the window is forgotten, and an answer to
a request let through before that cannot bring the old window's figure back (only a later request's answer sets the
new one; each such answer before it lowers it by one, as the server may have counted that request in the new
window). Reservations and the probe have leases, so a process that dies holding them gives them back by itself.

Redis unreachable: the ledger falls back to this process's own limiter (never to no limit), logs ONE warning per
outage, and tries Redis again every `RETRY_AFTER` seconds; the first success makes it shared again (logged at info).
A Redis that answers late (a command timed out: a starved machine, a busy server) is slow, not gone: falling back
then would let every process spend the window's whole budget on its own. The reservation that may have been taken is
given back and the command is tried again; reports are retried too. Only a Redis that stays silent for
`SLOW_GRACE` seconds, or refuses the connection, counts as unreachable.
The concurrency cap (`max_concurrency`) stays per process.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..transport.ratelimit import RateLimiter, RateLimitWaitTooLong, SlotWaitTimeout, Ticket, parse_rate_headers
from .redis_state import SharedState, shared_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["SharedRateLimiter", "SharedTicket"]

logger = logging.getLogger("accounting_bridge")

#: Seconds between looks at Redis while another process's probe is out (its answer is not pushed to us).
POLL = 0.02
#: After Redis failed, seconds during which the local limiter is used without trying Redis.
RETRY_AFTER = 1.0
#: Lease of a reservation (a request in flight) and of the probe, in seconds; idle state expires after `STATE_TTL`.
RESERVATION_LEASE = 120.0
PROBE_LEASE = 1.0
STATE_TTL = 3600.0
#: Seconds a Redis whose commands time out is waited for (commands retried) before it counts as unreachable.
SLOW_GRACE = 15.0

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: KEYS: state hash, in-flight zset. ARGV: reservation id, lease ms, probe lease ms, fallback reset ms, ttl ms.
#: Returns {1, probe, seen} (granted) or {0, wait ms, is_reset_wait}.
_RESERVE = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local s = KEYS[1]
local reset_at = tonumber(redis.call('HGET', s, 'reset_at'))
if reset_at and now >= reset_at then
  redis.call('HDEL', s, 'remaining', 'reset_at', 'debt')
  redis.call('HSET', s, 'forgot_at', redis.call('HINCRBY', s, 'seen', 1))
  reset_at = nil
end
local seen = tonumber(redis.call('HGET', s, 'seen')) or 0
local probe = 0
if redis.call('HGET', s, 'mode') ~= 'none' then
  local remaining = tonumber(redis.call('HGET', s, 'remaining'))
  if remaining == nil then
    local probe_until = tonumber(redis.call('HGET', s, 'probe_until')) or 0
    if probe_until > now then return {0, probe_until - now, 0} end
    redis.call('HSET', s, 'probe_until', now + tonumber(ARGV[3]), 'probe', ARGV[1])
    probe = 1
  elseif remaining <= 0 then
    if not reset_at then
      reset_at = now + tonumber(ARGV[4])
      redis.call('HSET', s, 'reset_at', reset_at)
    end
    return {0, reset_at - now, 1}
  else
    redis.call('HSET', s, 'remaining', remaining - 1)
  end
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', s, ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {1, probe, seen}
"""

#: KEYS: state hash, in-flight zset. ARGV: reservation id, ticket's seen, answered (0/1), has window (0/1),
#: remaining, reset ms (-1: none), status (0: none), fallback reset ms, ttl ms.
_RELEASE = _NOW + """
local s = KEYS[1]
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', s, 'probe') == ARGV[1] then redis.call('HDEL', s, 'probe', 'probe_until') end
if ARGV[3] == '0' then return 0 end
local status = tonumber(ARGV[7])
if ARGV[4] == '0' then
  if status ~= 429 and not redis.call('HGET', s, 'mode') then redis.call('HSET', s, 'mode', 'none') end
  return 0
end
redis.call('HSET', s, 'mode', 'window')
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local in_flight = redis.call('ZCARD', KEYS[2])
local obs = redis.call('HINCRBY', s, 'seen', 1)
local budget = 0
if status ~= 429 then budget = math.max(tonumber(ARGV[5]) - in_flight, 0) end
local reset_at = nil
if tonumber(ARGV[6]) >= 0 then reset_at = now + tonumber(ARGV[6]) end
local held = tonumber(redis.call('HGET', s, 'remaining'))
local from = tonumber(redis.call('HGET', s, 'figure_from')) or 0
local forgot = tonumber(redis.call('HGET', s, 'forgot_at')) or 0
if held == nil and tonumber(ARGV[2]) < forgot then
  -- an answer to a request let through before the window was forgotten: it may describe the window that is over,
  -- or the server counted it in the new one after the probe: the new figure is lowered by it (debt)
  redis.call('HINCRBY', s, 'debt', 1)
elseif held == nil or tonumber(ARGV[2]) >= from then
  if held == nil then
    budget = math.max(budget - (tonumber(redis.call('HGET', s, 'debt')) or 0), 0)
    redis.call('HDEL', s, 'debt')
  end
  redis.call('HSET', s, 'remaining', budget, 'figure_from', obs)
  if reset_at then redis.call('HSET', s, 'reset_at', reset_at) else redis.call('HDEL', s, 'reset_at') end
else
  if budget < held then redis.call('HSET', s, 'remaining', budget) end
  -- the latest answer seen: a request reserved before it may miss it in its figure (never replaces the budget)
  redis.call('HSET', s, 'figure_from', obs)
  if reset_at and not redis.call('HGET', s, 'reset_at') then redis.call('HSET', s, 'reset_at', reset_at) end
end
if tonumber(redis.call('HGET', s, 'remaining')) == 0 and not redis.call('HGET', s, 'reset_at') then
  redis.call('HSET', s, 'reset_at', now + tonumber(ARGV[8]))
end
redis.call('PEXPIRE', s, ARGV[9])
return 1
"""


@attrs.frozen
class SharedTicket(Ticket):
    """A ticket reserved in Redis (`reservation` names it there)."""

    reservation: str = attrs.field(default="", kw_only=True)


@attrs.frozen
class _Answer:
    """No ticket now: wait `wait` seconds (for the window's reset when `reset_wait`, else for another's probe)."""

    wait: float
    reset_wait: bool


class SharedRateLimiter(RateLimiter):
    """The budget of (backend, credential) in Redis; `fallback` (this process's limiter) when Redis is away."""

    def __init__(self, state: SharedState, backend: str, credential: str, fallback: RateLimiter) -> None:
        super().__init__()
        self.backend = backend
        self._key = state.key("rate", backend, credential)
        self._flight = self._key + ":flight"
        self._state = state
        self._fallback = fallback
        self._scripts: tuple[Redis, AsyncScript, AsyncScript] | None = None
        self._down_until: float | None = None
        self._slow_since: float | None = None  # when Redis' commands began to time out (None: it answers)
        self._warned = False
        self._parked: set[asyncio.Future[None]] = set()
        self._reports: set[asyncio.Task[None]] = set()
        #: Counters (for tests and benchmarks): tickets granted by Redis, by the local fallback, outages seen.
        self.shared_grants = 0
        self.local_grants = 0
        self.outages = 0

    @property
    def shared(self) -> bool:
        """True while the budget is taken from Redis (False during an outage)."""
        return self._down_until is None

    def set_cap(self, owner: object, max_concurrency: int | None) -> None:
        super().set_cap(owner, max_concurrency)
        self._fallback.set_cap(owner, max_concurrency)
        self._wake_parked()

    def drop_cap(self, owner: object) -> None:
        super().drop_cap(owner)
        self._fallback.drop_cap(owner)
        self._wake_parked()

    # --- acquire / release ------------------------------------------------------------------------------------

    async def acquire(self, *, max_wait: float | None = None) -> Ticket:
        started = self._clock()
        give_up_at = None if max_wait is None else started + max_wait
        while True:
            if self._local_now():
                return await self._local(give_up_at)
            cap = self.max_concurrency
            if cap is not None and self._in_flight >= cap:
                await self._nap(self._time_left(give_up_at, started))
                continue
            answer = await self._reserve()
            if answer is None:
                return await self._local(give_up_at)  # Redis is away: never no limit, this process's own
            if isinstance(answer, SharedTicket):
                return answer
            wait = answer.wait if answer.reset_wait else min(answer.wait, POLL)
            if give_up_at is not None:
                left = give_up_at - self._clock()
                if answer.reset_wait and answer.wait > left:
                    raise RateLimitWaitTooLong(answer.wait)
                if left <= 0:
                    raise SlotWaitTimeout(self._clock() - started)
                wait = min(wait, left)
            await self._nap(wait)

    async def _local(self, give_up_at: float | None) -> Ticket:
        left = None if give_up_at is None else max(give_up_at - self._clock(), 0.0)
        ticket = await self._fallback.acquire(max_wait=left)
        self.local_grants += 1
        return ticket

    def release(self, ticket: Ticket, headers: Mapping[str, str] | None, status: int | None = None) -> None:
        if not isinstance(ticket, SharedTicket):
            self._fallback.release(ticket, headers, status)
            return
        self._in_flight -= 1
        window = None if headers is None else parse_rate_headers(headers, wall_time=self._wall_clock())
        args: list[Any] = [
            ticket.reservation,
            ticket.seen,
            0 if headers is None else 1,
            0 if window is None else 1,
            0 if window is None else window.remaining,
            -1 if window is None or window.reset is None else int(window.reset * 1000),
            status or 0,
            int(self.fallback_reset * 1000),
            int(STATE_TTL * 1000),
        ]
        self._report(args)
        self._wake_parked()

    async def drain(self) -> None:
        """Wait until every finished request has been reported to Redis (they are sent in tasks of their own)."""
        while self._reports:
            await asyncio.gather(*self._reports)

    # --- Redis ------------------------------------------------------------------------------------------------

    def _local_now(self) -> bool:
        return self._down_until is not None and self._clock() < self._down_until

    def _script_pair(self) -> tuple[AsyncScript, AsyncScript]:
        client = self._state.client()
        if self._scripts is None or self._scripts[0] is not client:
            self._scripts = (client, client.register_script(_RESERVE), client.register_script(_RELEASE))
        return self._scripts[1], self._scripts[2]

    async def _reserve(self) -> SharedTicket | _Answer | None:
        """A granted ticket, an answer to wait on, or None when Redis failed (now marked down)."""
        reservation = secrets.token_hex(8)
        reserve, _ = self._script_pair()
        args: list[str | int] = [reservation, int(RESERVATION_LEASE * 1000), int(PROBE_LEASE * 1000),
                                 int(self.fallback_reset * 1000), int(STATE_TTL * 1000)]  # fmt: skip
        self._in_flight += 1  # counted before the await: the concurrency cap holds while Redis answers
        try:
            result = await reserve(keys=[self._key, self._flight], args=args)
        except shared_errors() as exc:
            self._in_flight -= 1
            if self._still_waiting_for(exc):
                self._report([reservation, 0, 0, 0, 0, -1, 0, 0, int(STATE_TTL * 1000)])  # it may have run
                return _Answer(POLL, reset_wait=False)
            self._went_down(exc)
            return None
        except BaseException:
            self._in_flight -= 1
            self._report([reservation, 0, 0, 0, 0, -1, 0, 0, int(STATE_TTL * 1000)])  # give back what it took
            raise
        self._came_back()
        granted, second, third = (int(part) for part in result)
        if granted:
            self.shared_grants += 1
            return SharedTicket(bool(second), seen=third, reservation=reservation)
        self._in_flight -= 1
        return _Answer(second / 1000, bool(third))

    def _report(self, args: list[Any]) -> None:
        """Tell Redis how a reservation ended, in a task of its own (`release` is synchronous)."""
        task = asyncio.get_running_loop().create_task(self._send_report(args))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _send_report(self, args: list[Any]) -> None:
        while True:
            _, release = self._script_pair()
            try:
                await release(keys=[self._key, self._flight], args=args)
                self._slow_since = None
                return
            except shared_errors() as exc:
                if not self._still_waiting_for(exc):
                    self._went_down(exc)  # the reservation's lease gives it back
                    return
            await asyncio.sleep(POLL)  # a late answer may have been applied already: again only lowers the figure

    def _still_waiting_for(self, exc: BaseException) -> bool:
        """True when `exc` is a late answer from a Redis not yet silent for `SLOW_GRACE`: try again, shared."""
        if not _timed_out(exc):
            return False
        now = self._clock()
        if self._slow_since is None:
            self._slow_since = now
        return now - self._slow_since < SLOW_GRACE

    def _went_down(self, exc: BaseException) -> None:
        self._down_until = self._clock() + RETRY_AFTER
        if not self._warned:
            self._warned = True
            self.outages += 1
            logger.warning(
                "%s: the shared rate limit (Redis) is unreachable (%s): this process falls back to its own limiter "
                "until it returns",
                self.backend,
                exc.__class__.__name__,
            )

    def _came_back(self) -> None:
        self._slow_since = None
        if self._down_until is None:
            return
        self._down_until = None
        if self._warned:
            self._warned = False
            logger.info("%s: the shared rate limit (Redis) is reachable again: the budget is shared", self.backend)

    # --- parking ----------------------------------------------------------------------------------------------

    def _time_left(self, give_up_at: float | None, started: float) -> float | None:
        if give_up_at is None:
            return None
        left = give_up_at - self._clock()
        if left <= 0:
            raise SlotWaitTimeout(self._clock() - started)
        return left

    async def _nap(self, timeout: float | None) -> None:
        """Park until a local release (or cap change) or `timeout`; a cancel propagates (own future, awaited)."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        self._parked.add(woken)
        timer = None if timeout is None else loop.call_later(timeout, _set, woken)
        try:
            await woken
        finally:
            if timer is not None:
                timer.cancel()
            self._parked.discard(woken)

    def _wake_parked(self) -> None:
        for woken in list(self._parked):
            _set(woken)
        self._parked.clear()


def _timed_out(exc: BaseException) -> bool:
    """A command that got no answer in time (Redis slow or this process starved), not a refused connection."""
    from redis.exceptions import TimeoutError as RedisTimeout

    return isinstance(exc, (RedisTimeout, asyncio.TimeoutError, TimeoutError))


def _set(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
