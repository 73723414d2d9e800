"""The header-driven limiter: it waits for the reset instead of collecting 429s."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import RateLimiter, Request, Transport, TransportConfig, parse_rate_headers
from accounting_bridge.transport.ratelimit import RateLimitWaitTooLong


class QuotaServer:
    """Grants `quota` requests per `window` seconds, announces the window in X-Rate-Limit-* headers, 429 past it."""

    def __init__(self, quota: int, window: float) -> None:
        self.quota, self.window = quota, window
        self.started: float | None = None
        self.used = 0
        self.arrivals: list[float] = []
        self.rejected = 0

    async def handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.arrivals.append(now)
        if self.started is None or now >= self.started + self.window:
            self.started, self.used = now, 0
        left = self.started + self.window - now
        headers = {"X-Rate-Limit-Limit": str(self.quota), "X-Rate-Limit-Reset": str(math.ceil(left))}
        if self.used >= self.quota:
            self.rejected += 1
            headers["X-Rate-Limit-Remaining"] = "0"
            return web.json_response({"message": "slow down"}, status=429, headers=headers)
        self.used += 1
        headers["X-Rate-Limit-Remaining"] = str(self.quota - self.used)
        await asyncio.sleep(0.01)
        return web.json_response({"ok": True}, headers=headers)


async def test_no_request_is_sent_while_remaining_is_zero_before_reset(local_server) -> None:
    arrivals: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        remaining = "0" if len(arrivals) == 1 else "5"
        return web.json_response({}, headers={"X-Rate-Limit-Remaining": remaining, "X-Rate-Limit-Reset": "1"})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    transport = Transport(TransportConfig(backend="limit-a", base_url=base))
    await transport.send(Request("GET", "/x"))
    await transport.send(Request("GET", "/x"))
    await transport.aclose()
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.95  # the second request waited for the announced reset


async def test_concurrent_burst_learns_the_window_first_and_gets_no_429(local_server) -> None:
    server = QuotaServer(quota=4, window=1.0)
    app = web.Application()
    app.router.add_get("/x", server.handle)
    base = await local_server(app)
    transport = Transport(TransportConfig(backend="limit-b", base_url=base))
    results = await asyncio.gather(*(transport.send(Request("GET", "/x")) for _ in range(10)))
    await transport.aclose()
    assert [r.status for r in results] == [200] * 10
    assert server.rejected == 0
    assert transport.attempts == 10


async def test_backend_without_headers_is_not_throttled(local_server) -> None:
    in_flight = {"now": 0, "max": 0}

    async def handler(request: web.Request) -> web.Response:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.05)
        in_flight["now"] -= 1
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    transport = Transport(TransportConfig(backend="limit-c", base_url=base))
    await transport.send(Request("GET", "/x"))  # teaches the limiter that there are no headers
    await asyncio.gather(*(transport.send(Request("GET", "/x")) for _ in range(8)))
    await transport.aclose()
    assert in_flight["max"] == 8


async def test_max_concurrency_caps_requests_in_flight(local_server) -> None:
    in_flight = {"now": 0, "max": 0}

    async def handler(request: web.Request) -> web.Response:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.02)
        in_flight["now"] -= 1
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    transport = Transport(TransportConfig(backend="limit-d", base_url=base, max_concurrency=2))
    await asyncio.gather(*(transport.send(Request("GET", "/x")) for _ in range(8)))
    await transport.aclose()
    assert in_flight["max"] == 2


async def test_limiter_counts_requests_in_flight() -> None:
    limiter = RateLimiter()
    probe = await limiter.acquire()
    assert probe.probe
    limiter.release(probe, {"X-Rate-Limit-Remaining": "3", "X-Rate-Limit-Reset": "60"}, 200)
    tickets = [await limiter.acquire() for _ in range(3)]
    assert limiter.remaining == 0
    # A late answer still says 2 left, but three requests are in flight: nothing more may go.
    limiter.release(tickets[0], {"X-Rate-Limit-Remaining": "2", "X-Rate-Limit-Reset": "59"}, 200)
    assert limiter.remaining == 0
    blocked = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not blocked.done()
    blocked.cancel()


def test_parse_rate_headers() -> None:
    window = parse_rate_headers({"X-Rate-Limit-Limit": "1000", "X-Rate-Limit-Remaining": "999", "X-Rate-Limit-Reset": "3600"})
    assert window is not None and (window.limit, window.remaining, window.reset) == (1000, 999, 3600.0)
    assert parse_rate_headers({"X-Rate-Limit-Limit": "5"}) is None


async def test_a_reset_too_far_away_is_raised_not_slept() -> None:
    limiter = RateLimiter()
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "3600"}, 200)
    with pytest.raises(RateLimitWaitTooLong) as info:
        await asyncio.wait_for(limiter.acquire(max_wait=60), timeout=1)
    assert info.value.wait > 3500


async def test_daily_limit_makes_later_calls_fail_fast_with_rate_limited(local_server) -> None:
    calls = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        calls["n"] += 1
        return web.json_response({}, status=429, headers={"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "86400"})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    transport = Transport(TransportConfig(backend="limit-e", base_url=base))
    for _ in range(2):
        with pytest.raises(ab.RateLimited) as info:
            await asyncio.wait_for(transport.send(Request("GET", "/x")), timeout=2)
        assert info.value.retry_after is not None and info.value.retry_after > 86000
    await transport.aclose()
    assert calls["n"] == 1  # the second call was refused locally, without waiting a day


async def test_cancelled_probe_does_not_freeze_the_limiter() -> None:
    limiter = RateLimiter()
    probe = await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())  # waits for the probe's answer
    await asyncio.sleep(0.01)
    assert not waiter.done()
    limiter.release(probe, None)  # the probe was cancelled before any answer: synchronous, cannot be skipped
    second = await asyncio.wait_for(waiter, timeout=1)
    assert second.probe  # the waiter became the next probe
    cancelled = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    limiter.release(second, {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "60"}, 200)
    assert not (await asyncio.wait_for(limiter.acquire(), timeout=1)).probe


async def test_only_the_probe_ends_probing() -> None:
    limiter = RateLimiter()
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": "2", "X-Rate-Limit-Reset": "0"}, 200)  # window already over
    first = await limiter.acquire()  # a new probe for the next window
    assert first.probe
    blocked = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0.01)
    assert not blocked.done()  # while the probe is out, nobody else goes
    blocked.cancel()


async def test_max_wait_bounds_the_whole_acquire_not_each_wake_up() -> None:
    limiter = RateLimiter()
    probe = await limiter.acquire()
    started = time.monotonic()
    with pytest.raises(RateLimitWaitTooLong):
        await limiter.acquire(max_wait=0.3)  # waits on a probe that never answers
    assert time.monotonic() - started < 1.0
    limiter.release(probe, None)


async def test_absurd_headers_do_not_break_release() -> None:
    limiter = RateLimiter(max_concurrency=1)
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "9" * 400}, 200)
    ticket = await asyncio.wait_for(limiter.acquire(), timeout=1)  # the concurrency slot came back
    assert not ticket.probe
