"""Redis stopped mid-run: requests go on under this process's own limiter with ONE warning; Redis restarted: the
budget is shared again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.fleet import redis_limiter
from accounting_bridge.fleet.redis_limiter import SharedRateLimiter

from . import servers


async def _requests(ledger: ab.Ledger, count: int) -> list[int]:
    responses = await asyncio.gather(*(ledger.raw("GET", "auth/owner") for _ in range(count)))
    return [response.status for response in responses]


async def test_outage_falls_back_with_one_warning_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_limiter, "RETRY_AFTER", 0.0)  # look at Redis again on every request (no waiting)
    caplog.set_level(logging.INFO, logger="accounting_bridge")
    with servers.own_redis(tmp_path) as redis_server:
        async with SmallInvoiceSandbox(quota=1000, window=60.0) as sandbox:
            settings = {**sandbox.connect_settings(), "shared_state": redis_server.url}
            async with ab.connect("smallinvoice", base_url=sandbox.base_url, **settings) as ledger:
                assert await _requests(ledger, 5) == [200] * 5
                limiter = ledger.adapter.transport.limiter
                assert isinstance(limiter, SharedRateLimiter)
                assert (limiter.shared_grants, limiter.local_grants) == (6, 0)  # with the token request

                redis_server.stop()
                assert await _requests(ledger, 10) == [200] * 10
                assert await _requests(ledger, 10) == [200] * 10
                assert (limiter.shared, limiter.local_grants, limiter.outages) == (False, 20, 1)
                warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
                assert len(warnings) == 1
                assert "falls back to its own limiter" in warnings[0].getMessage()

                redis_server.start()
                assert await _requests(ledger, 5) == [200] * 5
                assert limiter.shared
                assert limiter.shared_grants >= 6 + 4  # the first look may still meet a dead connection
                assert any("reachable again" in r.getMessage() for r in caplog.records)
                assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
