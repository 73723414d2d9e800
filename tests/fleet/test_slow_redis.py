"""A slow Redis is not an unreachable one: a command that times out (a starved machine) keeps the budget shared.

Falling back to the local limiter on a mere timeout let each of four workers spend the window on its own: 429s
under CPU load. Only a refused connection, or a Redis silent for `SLOW_GRACE`, means "unreachable".
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import pytest
from redis.exceptions import TimeoutError as RedisTimeout

from accounting_bridge.fleet import redis_limiter, redis_state
from accounting_bridge.fleet.redis_limiter import SharedRateLimiter, SharedTicket
from accounting_bridge.fleet.redis_state import SharedState
from accounting_bridge.transport.ratelimit import RateLimiter

WINDOW = {"X-Rate-Limit-Remaining": "10", "X-Rate-Limit-Reset": "30"}


@pytest.fixture
def state(redis_url: str) -> SharedState:
    return SharedState.parse(f"{redis_url}?key_prefix=t{secrets.token_hex(6)}")


def _late_once(limiter: SharedRateLimiter, which: int) -> list[int]:
    """Script `which` (0: reserve, 1: release) runs in Redis, but its first answer comes too late (times out)."""
    real = limiter._script_pair
    calls = [0]

    def pair() -> tuple[Any, Any]:
        scripts: list[Any] = list(real())
        script = scripts[which]

        async def late(**kwargs: Any) -> Any:
            result = await script(**kwargs)
            calls[0] += 1
            if calls[0] == 1:
                raise RedisTimeout("Timeout reading from 127.0.0.1")
            return result

        scripts[which] = late
        return scripts[0], scripts[1]

    limiter._script_pair = pair  # type: ignore[method-assign]
    return calls


async def _in_flight(state: SharedState) -> int:
    return int(await state.client().zcard(state.key("rate", "smallinvoice", "acme") + ":flight"))


async def test_a_reservation_answered_late_is_retried_not_a_fallback(
    state: SharedState, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    calls = _late_once(limiter, 0)
    ticket = await limiter.acquire(max_wait=10)
    await limiter.drain()
    assert isinstance(ticket, SharedTicket) and ticket.probe and calls == [2]
    assert (limiter.shared, limiter.local_grants, limiter.outages) == (True, 0, 0)
    assert await _in_flight(state) == 1  # the reservation the late answer took was given back
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_report_answered_late_is_retried_and_the_budget_stays_shared(state: SharedState) -> None:
    limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    probe = await limiter.acquire()
    calls = _late_once(limiter, 1)
    limiter.release(probe, WINDOW, 200)
    await limiter.drain()
    assert calls == [2] and limiter.shared
    assert not (await limiter.acquire(max_wait=1.0)).probe  # shared: the figure the report brought
    assert (limiter.local_grants, limiter.outages) == (0, 0)


async def test_a_redis_silent_past_the_grace_counts_as_unreachable(
    state: SharedState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_limiter, "SLOW_GRACE", 0.0)
    limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    _late_once(limiter, 0)
    ticket = await limiter.acquire(max_wait=10)
    assert not isinstance(ticket, SharedTicket)  # this process's own limiter: never no limit
    assert (limiter.shared, limiter.local_grants, limiter.outages) == (False, 1, 1)


async def test_a_long_queue_for_a_redis_connection_is_not_an_outage(
    state: SharedState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_state, "MAX_CONNECTIONS", 1)
    monkeypatch.setattr(redis_state, "SOCKET_TIMEOUT", 0.05)  # was also the deadline of the queue for a connection
    pool = state.client().connection_pool  # this test's loop: a pool of one connection
    held = await pool.get_connection()  # type: ignore[no-untyped-call]
    limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    acquiring = asyncio.ensure_future(limiter.acquire(max_wait=30))
    await asyncio.sleep(0.2)  # well past the old 0.05 s deadline (its timer fires first whatever the load)
    assert not acquiring.done()  # still queued for the connection, not fallen back
    await pool.release(held)
    ticket = await acquiring
    assert isinstance(ticket, SharedTicket)
    assert (limiter.local_grants, limiter.outages) == (0, 0)
