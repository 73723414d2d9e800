"""Rate limits announced in X-Rate-Limit-* headers: the core limiter waits for Reset instead of collecting 429s.

These are the only tests that wait in real time (the acceptance numbers need real windows).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab


async def test_quota_20_per_2s_window_100_concurrent_requests_no_429(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    sandbox.quota, sandbox.window, sandbox.latency = 20, 2.0, 0.02
    async with connect() as ledger:
        started = time.monotonic()
        results = await asyncio.gather(*(ledger.raw("GET", "/auth/owner") for _ in range(100)))
        elapsed = time.monotonic() - started
    assert [r.status for r in results] == [200] * 100
    assert sandbox.rate_limited == 0  # the sandbox answered no 429 at all
    assert sandbox.status_count(429) == 0
    assert sandbox.api_requests == 100
    # 101 requests (token + 100) at 20 per 2 s need at least five window changes
    assert elapsed >= 8.0


async def test_429_with_remaining_0_and_reset_1_is_waited_out(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async with connect() as ledger:
        await ledger.adapter.owner()  # type: ignore[attr-defined]  # token and window learned
        sandbox.rate_limit_next(reset=1)
        started = time.monotonic()
        owner = await ledger.adapter.owner()  # type: ignore[attr-defined]
        elapsed = time.monotonic() - started
    assert owner["surname"] == "Hans"
    assert sandbox.rate_limited == 1
    assert [entry[2] for entry in sandbox.request_log[-2:]] == [429, 200]
    assert 0.9 <= elapsed < 2.5  # about a second, without user code


async def test_429_without_hint_is_retried_with_the_fake_sleep(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async with connect() as ledger:
        ledger.adapter.transport.sleep = fake_sleep  # type: ignore[attr-defined]
        await ledger.adapter.owner()  # type: ignore[attr-defined]
        sandbox.rate_limit_next(reset=0, count=2)
        assert (await ledger.adapter.owner())["id"] == 1  # type: ignore[attr-defined]
    assert delays == [0.0, 0.0]
