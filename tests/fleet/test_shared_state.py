"""`shared_state`: the setting, the key names, the shared budget's reservation step and the fenced token save."""

from __future__ import annotations

import asyncio
import gc
import secrets
import subprocess
import sys
import time

import pytest
import redis.asyncio as redis_asyncio
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.fleet import redis_limiter
from accounting_bridge.fleet.redis_limiter import SharedRateLimiter, SharedTicket
from accounting_bridge.fleet.redis_state import SharedState
from accounting_bridge.fleet.redis_tokens import RedisTokenStore
from accounting_bridge.transport.auth import MemoryTokenStore, StaleRenewal, Token
from accounting_bridge.transport.ratelimit import RateLimiter, RateLimitWaitTooLong, SlotWaitTimeout


@pytest.fixture
def state(redis_url: str) -> SharedState:
    """A shared state of its own (a fresh key prefix) on the session's Redis."""
    return SharedState.parse(f"{redis_url}?key_prefix=t{secrets.token_hex(6)}")


def test_importing_accounting_bridge_loads_neither_redis_nor_psycopg() -> None:
    code = "import sys, accounting_bridge; print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'psycopg')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert done.stdout.strip() == "[]"


def test_the_setting_is_checked_and_never_shown() -> None:
    secret = "pw-" + secrets.token_hex(4)
    for bad in (f"http://user:{secret}@host/0", f"redis://:{secret}@host/0?lock_ttl=soon", 42):
        with pytest.raises(ab.ConfigurationError, match="shared_state") as caught:
            ab.connect("smallinvoice", client_id="c", client_secret="s", shared_state=bad)
        assert secret not in str(caught.value)
    with pytest.raises(ab.ConfigurationError, match="token_store or shared_state"):
        ab.connect("smallinvoice", client_id="c", client_secret="s", shared_state="redis://h:1/0",
                   token_store=MemoryTokenStore())  # fmt: skip
    ledger = ab.connect("smallinvoice", client_id="c", client_secret="s", shared_state=f"redis://:{secret}@h:1/0")
    assert secret not in repr(ledger.adapter.settings) + repr(ledger.adapter.settings.token_store)


async def test_keys_are_hashes_and_the_pool_passes_the_setting_on(state: SharedState, redis_url: str) -> None:
    shared = f"{redis_url}?key_prefix={state.key_prefix}"
    async with SmallInvoiceSandbox() as sandbox:
        settings = sandbox.connect_settings()
        profiles = {"acme": {"backend": "smallinvoice", "base_url": sandbox.base_url, "sandbox": True, **settings}}
        async with ab.LedgerPool(profiles=profiles, shared_state=shared) as pool:
            ledger = await pool.get("acme")
            assert (await ledger.raw("GET", "auth/owner")).status == 200
            assert isinstance(ledger.adapter.transport.limiter, SharedRateLimiter)
            assert isinstance(ledger.adapter.settings.token_store, RedisTokenStore)
    client = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = [key async for key in client.scan_iter(match=f"{state.key_prefix}:*")]
    finally:
        await client.aclose()
    assert {key.split(":")[1] for key in keys} >= {"rate", "token", "fence"}
    for key in keys:
        assert settings["client_id"] not in key and settings["client_secret"] not in key


async def test_processes_share_one_budget_and_never_all_spend_the_last_request(state: SharedState) -> None:
    first = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())  # as in two processes
    second = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    probe = await first.acquire()
    assert isinstance(probe, SharedTicket) and probe.probe
    first.release(probe, {"X-Rate-Limit-Remaining": "3", "X-Rate-Limit-Reset": "30"}, 200)
    await first.drain()
    tickets = await asyncio.gather(first.acquire(), second.acquire(), second.acquire())
    assert not any(t.probe for t in tickets)
    for limiter in (first, second):  # the budget is spent for both: the reset is too far to wait for
        with pytest.raises(RateLimitWaitTooLong):
            await limiter.acquire(max_wait=1.0)
    assert (first.shared_grants, second.shared_grants, first.local_grants + second.local_grants) == (2, 2, 0)


async def test_a_stale_lock_holder_never_overwrites_a_newer_token(state: SharedState) -> None:
    store = RedisTokenStore(state)
    older, newer = Token(access_token="at-1", refresh_token="rt-1"), Token(access_token="at-2", refresh_token="rt-2")
    client = state.client()
    async with store.renewal("acme") as stale:
        await stale.load("acme")
        await client.delete(state.key("lock", "acme"))  # as if it froze past lock_ttl
        async with store.renewal("acme") as taken_over:
            await taken_over.load("acme")
            await taken_over.save("acme", newer)
        with pytest.raises(StaleRenewal):
            await stale.save("acme", older)
    assert await store.load("acme") == newer
    assert (store.locks_taken, store.locks_waited) == (2, 0)


async def test_a_lapsed_lock_nobody_took_still_saves_the_rotated_token(state: SharedState) -> None:
    store = RedisTokenStore(state)
    async with store.renewal("acme") as lapsed:
        await lapsed.load("acme")
        await state.client().delete(state.key("lock", "acme"))
        async with store.renewal("acme") as other:  # took the lock, did not save (it found nothing to do)
            await other.load("acme")
        await lapsed.save("acme", Token(access_token="at-1", refresh_token="rt-1"))
    stored = await store.load("acme")
    assert stored is not None and stored.refresh_token == "rt-1"


async def test_an_answer_from_before_the_reset_cannot_bring_the_old_window_back(state: SharedState) -> None:
    limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "0.05"}, 200)
    await limiter.drain()
    early = await limiter.acquire()  # let through in the window that is about to end
    await asyncio.sleep(0.1)  # at least this long: the window's reset passes (Redis' clock decides)
    new_probe = await limiter.acquire()
    assert new_probe.probe
    limiter.release(early, {"X-Rate-Limit-Remaining": "30", "X-Rate-Limit-Reset": "2"}, 200)
    await limiter.drain()
    with pytest.raises(SlotWaitTimeout):  # still waiting for the new window's figure: the probe's answer
        await limiter.acquire(max_wait=0.05)
    limiter.release(new_probe, {"X-Rate-Limit-Remaining": "39", "X-Rate-Limit-Reset": "2"}, 200)
    await limiter.drain()
    assert not (await limiter.acquire(max_wait=1.0)).probe


async def test_the_in_process_limiter_keeps_the_same_rule_after_a_reset() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limiter.release(await limiter.acquire(), {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "1"}, 200)
    early = await limiter.acquire()  # let through in the window that is about to end
    now[0] = 2.0  # the reset passed
    new_probe = await limiter.acquire()
    assert new_probe.probe
    limiter.release(early, {"X-Rate-Limit-Remaining": "30", "X-Rate-Limit-Reset": "2"}, 200)
    with pytest.raises(SlotWaitTimeout):  # still waiting for the new window's figure: the probe's answer
        await limiter.acquire(max_wait=0)
    limiter.release(new_probe, {"X-Rate-Limit-Remaining": "39", "X-Rate-Limit-Reset": "2"}, 200)
    assert limiter.remaining == 38  # less the early request (see the next test)
    assert not (await limiter.acquire(max_wait=0)).probe


async def test_an_old_window_answer_ignored_while_probing_still_lowers_the_new_figure(state: SharedState) -> None:
    limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    probe = await limiter.acquire()
    limiter.release(probe, {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "0.05"}, 200)
    await limiter.drain()
    early = await limiter.acquire()
    await asyncio.sleep(0.1)  # at least this long: the window's reset passes (Redis' clock decides)
    new_probe = await limiter.acquire()
    limiter.release(early, {"X-Rate-Limit-Remaining": "38", "X-Rate-Limit-Reset": "2"}, 200)  # counted after the probe
    await limiter.drain()
    limiter.release(new_probe, {"X-Rate-Limit-Remaining": "39", "X-Rate-Limit-Reset": "2"}, 200)
    await limiter.drain()
    held = await state.client().hget(state.key("rate", "smallinvoice", "acme"), "remaining")
    assert held == "38"  # the server's 39 less the early request it may have counted after answering the probe


async def test_the_in_process_limiter_also_counts_an_old_window_answer_against_the_new_figure() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limiter.release(await limiter.acquire(), {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "1"}, 200)
    early = await limiter.acquire()
    now[0] = 2.0  # the reset passed
    new_probe = await limiter.acquire()
    limiter.release(early, {"X-Rate-Limit-Remaining": "38", "X-Rate-Limit-Reset": "2"}, 200)  # counted after the probe
    limiter.release(new_probe, {"X-Rate-Limit-Remaining": "39", "X-Rate-Limit-Reset": "2"}, 200)
    assert limiter.remaining == 38


def _redis_clients(redis_url: str) -> int:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        return len(client.client_list()) - 1  # not this one


def _redis_clients_after_closing(redis_url: str, expected: int) -> int:
    """The count once closed connections are gone (the server sees them at once: a poll with a deadline)."""
    deadline = time.monotonic() + 5
    while (count := _redis_clients(redis_url)) > expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


async def test_an_event_loop_that_ends_leaves_no_redis_connection_open(redis_url: str, state: SharedState) -> None:
    async def use_it() -> None:
        limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
        tickets = [await limiter.acquire()]
        limiter.release(tickets[0], {"X-Rate-Limit-Remaining": "9", "X-Rate-Limit-Reset": "5"}, 200)
        await limiter.drain()
        tickets = await asyncio.gather(*(limiter.acquire() for _ in range(4)))
        for ticket in tickets:
            limiter.release(ticket, None)
        await limiter.drain()
        async with RedisTokenStore(state).renewal("acme") as fenced:
            await fenced.load("acme")

    before = _redis_clients(redis_url)
    gc.disable()  # closed, not merely collected: the garbage collector would close a leaked socket at random
    try:
        for _ in range(2):
            await asyncio.to_thread(asyncio.run, use_it())  # a worker thread's own loop, ended by asyncio.run
        assert _redis_clients_after_closing(redis_url, before) == before
    finally:
        gc.enable()


async def test_the_probe_and_reservations_of_a_process_that_died_lapse(
    state: SharedState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_limiter, "PROBE_LEASE", 0.05)
    monkeypatch.setattr(redis_limiter, "RESERVATION_LEASE", 0.05)
    died = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    alive = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    assert (await died.acquire()).probe  # and it never answers
    with pytest.raises(SlotWaitTimeout):
        await alive.acquire(max_wait=0)  # the probe is out
    probe = await alive.acquire(max_wait=5)  # once its lease lapsed (Redis' clock decides)
    assert probe.probe
    alive.release(probe, {"X-Rate-Limit-Remaining": "10", "X-Rate-Limit-Reset": "5"}, 200)
    await alive.drain()
    held = await state.client().hget(state.key("rate", "smallinvoice", "acme"), "remaining")
    assert held == "10"  # the dead process's reservation no longer counts as in flight


# The answers' order at the client is not the server's counting order. Below, the server counts X, A, D, C (remaining
# 19, 18, 17, 16 after a probe's 20) while the client sees A, X, C, D: C's answer lowers nothing (X was already
# subtracted twice), and D, reserved before C's answer arrived, must then not replace the figure with its 17 — the
# server counted C after D, so D's figure misses C.
def _counted_in_another_order() -> list[tuple[str, str]]:
    return [("A", "18"), ("X", "19"), ("reserve", "D"), ("C", "16"), ("D", "17")]


async def test_an_answer_older_than_the_last_one_seen_never_replaces_the_figure() -> None:
    limiter = RateLimiter()
    limiter.release(await limiter.acquire(), {"X-Rate-Limit-Remaining": "20", "X-Rate-Limit-Reset": "60"}, 200)
    tickets = {name: await limiter.acquire() for name in "XCA"}
    for name, value in _counted_in_another_order():
        if name == "reserve":
            tickets[value] = await limiter.acquire()
        else:
            limiter.release(tickets[name], {"X-Rate-Limit-Remaining": value, "X-Rate-Limit-Reset": "60"}, 200)
    assert limiter.remaining is not None and limiter.remaining <= 16  # the server has 16 left


async def test_the_shared_budget_never_takes_a_figure_older_than_the_last_answer_seen(state: SharedState) -> None:
    limiter = SharedRateLimiter(state, "smallinvoice", "acme", RateLimiter())
    limiter.release(await limiter.acquire(), {"X-Rate-Limit-Remaining": "20", "X-Rate-Limit-Reset": "60"}, 200)
    await limiter.drain()
    tickets = {name: await limiter.acquire() for name in "XCA"}
    for name, value in _counted_in_another_order():
        if name == "reserve":
            tickets[value] = await limiter.acquire()
        else:
            limiter.release(tickets[name], {"X-Rate-Limit-Remaining": value, "X-Rate-Limit-Reset": "60"}, 200)
            await limiter.drain()
    held = await state.client().hget(state.key("rate", "smallinvoice", "acme"), "remaining")
    assert int(held) <= 16  # the server has 16 left
