"""Limiters across many event loops: a closed loop is freed with its registry entry (#14.5)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from accounting_bridge.transport import ratelimit
from accounting_bridge.transport.ratelimit import SlotWaitTimeout, existing_limiter, limiter_for

WINDOW = {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "60"}
RUNS = 50


class Owner:
    """Stands in for a `Transport` registering its cap."""


async def use_a_limiter(loops: list[weakref.ref[asyncio.AbstractEventLoop]], owner: Owner) -> None:
    """Everything that could leave a loop-bound object behind: a probe, a woken waiter, a waiter that gives up,
    a cancelled waiter, a registered cap."""
    loops.append(weakref.ref(asyncio.get_running_loop()))
    assert existing_limiter("loops", "credential") is None  # a new loop starts with no limiter
    limiter = limiter_for("loops", "credential")
    limiter.set_cap(owner, 1)
    probe = await limiter.acquire()
    woken = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not woken.done()  # queued behind the probe
    limiter.release(probe, WINDOW, 200)
    ticket = await woken
    with pytest.raises(SlotWaitTimeout):
        await limiter.acquire(max_wait=0.001)  # the one slot is taken
    cancelled = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    limiter.release(ticket, WINDOW, 200)
    assert existing_limiter("loops", "credential") is limiter


def test_closed_loops_and_their_limiters_are_freed() -> None:
    gc.collect()
    registered_before = len(ratelimit._LIMITERS)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    owner = Owner()  # one ledger object used across all runs, as a platform would
    for _ in range(RUNS):
        asyncio.run(use_a_limiter(loops, owner))
    gc.collect()
    alive = [ref for ref in loops if ref() is not None]
    assert len(loops) == RUNS
    assert alive == [], f"{len(alive)} closed event loops are still referenced"
    assert len(ratelimit._LIMITERS) == registered_before
