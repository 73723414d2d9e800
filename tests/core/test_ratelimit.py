"""The header-driven limiter: it waits for the reset instead of collecting 429s."""

from __future__ import annotations

import asyncio
import gc
import math
import time

import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import RateLimiter, Request, Transport, TransportConfig, parse_rate_headers
from accounting_bridge.transport.ratelimit import RateLimitWaitTooLong, SlotWaitTimeout, Ticket, existing_limiter


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
    window = parse_rate_headers(
        {"X-Rate-Limit-Limit": "1000", "X-Rate-Limit-Remaining": "999", "X-Rate-Limit-Reset": "3600"}
    )
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
    with pytest.raises(SlotWaitTimeout):
        await limiter.acquire(max_wait=0.3)  # waits on a probe that never answers
    assert time.monotonic() - started < 1.0
    limiter.release(probe, None)


async def test_waiting_behind_a_slow_probe_is_a_timeout_not_a_rate_limit() -> None:
    """#14.10: no rate-limit headers known yet, the probe is slow: running out of time is not `RateLimited`."""
    limiter = RateLimiter()
    probe = await limiter.acquire()
    with pytest.raises(SlotWaitTimeout) as info:
        await asyncio.wait_for(limiter.acquire(max_wait=0.05), timeout=2)
    assert not isinstance(info.value, RateLimitWaitTooLong)
    limiter.release(probe, None)


async def test_absurd_headers_do_not_break_release() -> None:
    limiter = RateLimiter(max_concurrency=1)
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "9" * 400}, 200)
    ticket = await asyncio.wait_for(limiter.acquire(), timeout=1)  # the concurrency slot came back
    assert not ticket.probe


class Owner:
    """Stands in for a `Transport` registering its cap (held weakly, like a ledger)."""


NO_HEADERS: dict[str, str] = {}


async def learn_no_headers(limiter: RateLimiter) -> None:
    probe = await limiter.acquire()
    limiter.release(probe, NO_HEADERS, 200)


async def test_the_smallest_cap_of_the_credentials_owners_holds() -> None:
    """#14.8: ledger A (no cap) came first; ledger B's cap of 2 still holds for the credential."""
    limiter = RateLimiter()
    first, second = Owner(), Owner()
    limiter.set_cap(first, None)
    await learn_no_headers(limiter)
    limiter.set_cap(second, 2)
    limiter.set_cap(second, 2)  # idempotent
    assert limiter.max_concurrency == 2
    tickets = [await limiter.acquire(max_wait=0) for _ in range(2)]
    with pytest.raises(SlotWaitTimeout):
        await limiter.acquire(max_wait=0)
    for ticket in tickets:
        limiter.release(ticket, NO_HEADERS, 200)
    limiter.set_cap(first, 5)
    assert limiter.max_concurrency == 2  # the smallest wins
    limiter.drop_cap(second)
    assert limiter.max_concurrency == 5


async def test_a_collected_owner_stops_capping() -> None:
    limiter = RateLimiter()
    owner = Owner()
    limiter.set_cap(owner, 1)
    assert limiter.max_concurrency == 1
    del owner
    gc.collect()
    assert limiter.max_concurrency is None


async def test_a_raised_or_dropped_cap_wakes_the_waiters() -> None:
    limiter = RateLimiter()
    owner = Owner()
    limiter.set_cap(owner, 1)
    await learn_no_headers(limiter)
    held = await limiter.acquire()
    waiting = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiting.done()
    limiter.set_cap(owner, 2)  # no release: the new cap alone lets the waiter go
    second = await asyncio.wait_for(waiting, timeout=1)
    waiting = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiting.done()
    limiter.drop_cap(owner)
    third = await asyncio.wait_for(waiting, timeout=1)
    for ticket in (held, second, third):
        limiter.release(ticket, NO_HEADERS, 200)
    assert limiter.in_flight == 0


async def test_waiting_for_a_concurrency_slot_honours_max_wait() -> None:
    """#14.9: queued behind a long request with max_concurrency=1, the caller gives up when max_wait runs out."""
    limiter = RateLimiter(max_concurrency=1)
    await learn_no_headers(limiter)
    held = await limiter.acquire()
    with pytest.raises(SlotWaitTimeout):
        await asyncio.wait_for(limiter.acquire(max_wait=0.05), timeout=2)
    limiter.release(held, NO_HEADERS, 200)
    ticket = await asyncio.wait_for(limiter.acquire(max_wait=0), timeout=1)  # the timed-out waiter took nothing
    limiter.release(ticket, NO_HEADERS, 200)


WALL = 1_800_000_000.0  # a fixed "now" as a Unix time


def test_a_reset_given_as_a_unix_time_is_read_as_until_then() -> None:
    def reset(value: str) -> float | None:
        window = parse_rate_headers({"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": value}, wall_time=WALL)
        assert window is not None
        return window.reset

    assert reset(str(int(WALL) + 30)) == 30.0
    assert reset(str(int(WALL) - 5)) == 0.0  # already past: the window is over
    assert reset("45") == 45.0  # seconds from now, as before
    assert reset("1.5") == 1.5
    for nonsense in ("-3", "nan", "inf", "soon", str(int(WALL * 1000)), "9" * 400):
        assert reset(nonsense) is None, nonsense


async def test_limiter_waits_until_a_unix_time_reset_not_for_decades() -> None:
    limiter = RateLimiter(wall_clock=lambda: WALL)
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(int(WALL) + 30)}, 200)
    with pytest.raises(RateLimitWaitTooLong) as info:
        await limiter.acquire(max_wait=10)
    assert 29 <= info.value.wait <= 30


async def start_window(limiter: RateLimiter, remaining: int) -> None:
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": str(remaining), "X-Rate-Limit-Reset": "60"}, 200)


def answer(remaining: int) -> dict[str, str]:
    return {"X-Rate-Limit-Remaining": str(remaining), "X-Rate-Limit-Reset": "60"}


async def test_a_newer_answer_can_raise_the_budget_within_the_window() -> None:
    limiter = RateLimiter()
    await start_window(limiter, 3)
    first = await limiter.acquire(max_wait=0)
    limiter.release(first, answer(2), 200)
    assert limiter.remaining == 2
    later = await limiter.acquire(max_wait=0)  # left after the last answer: its figure is newer than what we hold
    other = await limiter.acquire(max_wait=0)
    limiter.release(later, answer(9), 200)  # the server granted more (e.g. its window rolled over)
    assert limiter.remaining == 8  # 9 minus the request still in flight
    limiter.release(other, answer(7), 200)  # overtaken by `later`'s answer: may lower, not raise
    assert limiter.remaining == 7


async def test_a_stale_higher_figure_hands_out_no_slots() -> None:
    """Answers overtake each other: the higher figure of the older request must not raise the budget."""
    limiter = RateLimiter()
    await start_window(limiter, 10)
    older, newer = await limiter.acquire(max_wait=0), await limiter.acquire(max_wait=0)
    limiter.release(newer, answer(3), 200)  # the server counted others' requests too
    assert limiter.remaining == 2  # `older` is still in flight
    limiter.release(older, answer(8), 200)  # computed before `newer`'s answer: stale
    assert limiter.remaining == 2


async def test_a_429_empties_the_budget_even_from_a_newer_answer() -> None:
    limiter = RateLimiter()
    await start_window(limiter, 5)
    ticket = await limiter.acquire(max_wait=0)
    limiter.release(ticket, answer(4), 429)
    assert limiter.remaining == 0


async def test_a_second_ledger_s_cap_holds_for_the_credential(local_server) -> None:
    """#14.8 end to end: ledger A (no cap) makes one call, then ledger B (max_concurrency=2, same credential)
    starts 8 calls. The first two are held at the server until either both arrived and the other six are parked
    in the limiter (the cap holds) or a third request arrives (it does not): no timing involved."""
    in_flight = {"now": 0, "max": 0, "arrived": 0}
    transports: list[Transport] = []

    async def others_parked_or_a_third_arrived() -> None:
        limiter = existing_limiter("limit-caps", transports[0].auth.credential_id)
        assert limiter is not None
        # polls two counters one loop step at a time (server and client share the loop): no wall-clock timing
        while not ((in_flight["arrived"] == 2 and limiter.waiting == 6) or in_flight["arrived"] >= 3):  # noqa: ASYNC110
            await asyncio.sleep(0)

    async def handler(request: web.Request) -> web.Response:
        in_flight["arrived"] += 1
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        if in_flight["arrived"] <= 2:
            await asyncio.wait_for(others_parked_or_a_third_arrived(), timeout=2)
        in_flight["now"] -= 1
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    first = Transport(TransportConfig(backend="limit-caps", base_url=base))
    transports.append(first)
    in_flight["arrived"] = 2  # not held
    await first.send(Request("GET", "/x"))
    in_flight["arrived"] = 0
    second = Transport(TransportConfig(backend="limit-caps", base_url=base, max_concurrency=2))
    await asyncio.gather(*(second.send(Request("GET", "/x")) for _ in range(8)))
    await first.aclose()
    await second.aclose()
    assert in_flight["max"] == 2


async def park(limiter: RateLimiter, count: int, **kwargs: float) -> list[asyncio.Future[Ticket]]:
    waiters = [asyncio.ensure_future(limiter.acquire(**kwargs)) for _ in range(count)]
    await asyncio.sleep(0)
    assert limiter.waiting == count
    return waiters


async def test_a_freed_slot_wakes_one_waiter_not_the_whole_queue() -> None:
    """A bulk push queues hundreds of calls behind a small cap: each release must not wake them all."""
    limiter = RateLimiter(max_concurrency=1)
    await learn_no_headers(limiter)
    held = await limiter.acquire()
    waiters = await park(limiter, 50)
    limiter.release(held, NO_HEADERS, 200)
    assert limiter.waiting == 49  # exactly one was woken
    for waiter in waiters:
        limiter.release(await asyncio.wait_for(waiter, timeout=1), NO_HEADERS, 200)
    assert limiter.in_flight == 0


async def test_the_probe_s_answer_wakes_as_many_waiters_as_the_budget_allows() -> None:
    limiter = RateLimiter()
    probe = await limiter.acquire()
    waiters = await park(limiter, 10)
    limiter.release(probe, answer(3), 200)
    assert limiter.waiting == 7
    granted = [await asyncio.wait_for(waiter, timeout=1) for waiter in waiters[:3]]
    assert limiter.remaining == 0 and limiter.waiting == 7
    for waiter in waiters[3:]:
        waiter.cancel()
    await asyncio.gather(*waiters[3:], return_exceptions=True)
    for ticket in granted:
        limiter.release(ticket, None)


async def test_a_spent_budget_makes_waiters_with_less_time_give_up_at_once() -> None:
    """Queued behind the probe with 30 s to wait, the probe answers "0 left, reset in an hour": no 30 s wait."""
    limiter = RateLimiter()
    probe = await limiter.acquire()
    waiters = await park(limiter, 3, max_wait=30)
    limiter.release(probe, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "3600"}, 200)
    for waiter in waiters:
        with pytest.raises(RateLimitWaitTooLong):
            await asyncio.wait_for(waiter, timeout=1)
