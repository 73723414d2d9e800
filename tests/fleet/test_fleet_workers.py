"""Acceptance of issue 12 with real processes: 4 workers × 25 concurrent requests share one smallinvoice budget
through Redis; a token that expires mid-run is renewed once for the whole fleet; the renewal lock of a holder
killed with SIGKILL lapses and another worker renews, without `invalid_grant`."""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as redis_asyncio
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox
from aiohttp import web

from .fleet import Fleet

QUOTA, WINDOW = 40, 2.0  # the sandbox's rate limit: 40 requests per 2 s window
ALLOWED_RATE = QUOTA / WINDOW


def _shared(redis_url: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"key_prefix": f"t{secrets.token_hex(6)}", **params}.items())
    return f"{redis_url}?{query}"


async def test_four_workers_share_one_budget_and_renew_once(redis_url: str) -> None:
    async with SmallInvoiceSandbox(quota=QUOTA, window=WINDOW) as sandbox:
        settings = {**sandbox.connect_settings(), "shared_state": _shared(redis_url)}
        async with Fleet(4, sandbox.base_url, settings) as fleet:
            results, elapsed = await fleet.phase(requests=25, concurrency=25)
            assert [r["errors"] for r in results] == [[]] * 4
            assert sum(r["ok"] for r in results) == 100
            shown = [{k: r[k] for k in ("warnings", "elapsed")} for r in results]
            assert [r["warnings"] for r in results] == [0] * 4, shown  # Redis up (if slow): no fallback to local
            assert sandbox.rate_limited == 0, shown
            throughput = 100 / elapsed
            assert throughput >= 0.85 * ALLOWED_RATE, f"{throughput:.1f} requests/s of {ALLOWED_RATE} allowed"

            grants = sandbox.token_grants
            sandbox.faults.expire_tokens()  # every worker's access token is refused from now on
            results, _ = await fleet.phase(requests=3, concurrency=3)
            assert [r["errors"] for r in results] == [[]] * 4
            assert sum(r["ok"] for r in results) == 12
            assert sandbox.token_grants - grants == 1  # one renewal for the whole fleet
            assert sandbox.rate_limited == 0
            assert [r["warnings"] for r in results] == [0] * 4


class HeldTokenSandbox(SmallInvoiceSandbox):
    """Holds the first token request until `release` is set, then drops it unprocessed (its client was killed
    before the server acted on it, so the refresh token it carried is not spent)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.granted_at: list[float] = []

    async def _token(self, request: web.Request) -> web.StreamResponse:
        if not self.held.is_set():
            self.held.set()
            await self.release.wait()
            return web.Response(status=503)
        response = await super()._token(request)
        self.granted_at.append(time.monotonic())
        return response


async def _lock_holder_pid(redis_url: str, prefix: str) -> int:
    client = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:lock:*")]
        assert len(keys) == 1, keys
        value = await client.get(keys[0])  # fence:host:pid:random
        return int(value.split(":")[2])
    finally:
        await client.aclose()


async def test_killed_renewal_lock_holder_is_taken_over(redis_url: str) -> None:
    lock_ttl = 2.0
    prefix = f"t{secrets.token_hex(6)}"
    async with HeldTokenSandbox() as sandbox:
        refresh_token = sandbox.issue_refresh_token(sandbox.default_client)
        settings = {**sandbox.connect_settings(), "refresh_token": refresh_token,
                    "shared_state": _shared(redis_url, key_prefix=prefix, lock_ttl=str(lock_ttl))}  # fmt: skip
        async with Fleet(3, sandbox.base_url, settings) as fleet:
            fleet.start_phase(requests=1, concurrency=1)
            await asyncio.wait_for(sandbox.held.wait(), 30)
            holder = await _lock_holder_pid(redis_url, prefix)
            killed = fleet.kill(holder)
            killed_at = time.monotonic()
            await killed.wait()
            sandbox.release.set()
            survivors = [w for w in fleet.workers if w is not killed]
            results = await fleet.results(survivors)
        assert [r["errors"] for r in results] == [[], []]
        assert [r["ok"] for r in results] == [1, 1]
        assert sandbox.invalid_grants == 0
        assert len(sandbox.granted_at) == 1  # one renewal, by the process that took the lock over
        assert sandbox.granted_at[0] - killed_at < lock_ttl + 1.0
