"""The per-ledger single-flight cache (units, contacts): cancellation neither leaks nor poisons a shared load."""

from __future__ import annotations

import asyncio

from accounting_bridge.adapters.smallinvoice.cache import SingleFlightCache


async def test_a_cancelled_waiter_ends_cancelled_even_when_its_loader_is_cancelled_too() -> None:
    """Cancelling a push cancels every create waiting for the units: none of them may start a new load (and go
    on to send its invoice) because the load it waited for was cancelled in the same turn."""
    cache: SingleFlightCache[int] = SingleFlightCache(None)
    started, release = asyncio.Event(), asyncio.Event()
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        started.set()
        await release.wait()
        return 7

    loader = asyncio.create_task(cache.get("units", load))
    await started.wait()
    waiter = asyncio.create_task(cache.get("units", load))
    await asyncio.sleep(0)  # one turn: the waiter now waits for the loader's flight
    loader.cancel()
    waiter.cancel()
    release.set()
    results = await asyncio.gather(loader, waiter, return_exceptions=True)
    assert [type(r) for r in results] == [asyncio.CancelledError, asyncio.CancelledError]
    assert loads == 1 and cache.peek("units") is None


async def test_a_cancelled_loader_neither_hangs_nor_poisons_the_callers_waiting_for_it() -> None:
    cache: SingleFlightCache[int] = SingleFlightCache(None)
    started, never = asyncio.Event(), asyncio.Event()
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        if loads == 1:
            started.set()
            await never.wait()
        return 7

    loader = asyncio.create_task(cache.get("units", load))
    await started.wait()
    waiters = [asyncio.create_task(cache.get("units", load)) for _ in range(3)]
    await asyncio.sleep(0)
    loader.cancel()
    assert await asyncio.gather(*waiters) == [7, 7, 7]
    assert loader.cancelled() and loads == 2  # one waiter loaded again, the others shared it


async def test_a_failed_load_reaches_its_waiters_and_is_not_kept() -> None:
    cache: SingleFlightCache[int] = SingleFlightCache(None)
    started, fail = asyncio.Event(), asyncio.Event()

    async def broken() -> int:
        started.set()
        await fail.wait()
        raise LookupError("units unavailable")

    async def working() -> int:
        return 7

    loader = asyncio.create_task(cache.get("units", broken))
    await started.wait()
    waiter = asyncio.create_task(cache.get("units", broken))
    await asyncio.sleep(0)
    fail.set()
    results = await asyncio.gather(loader, waiter, return_exceptions=True)
    assert [type(r) for r in results] == [LookupError, LookupError]
    assert await cache.get("units", working) == 7
