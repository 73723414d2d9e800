"""LedgerPool: lazy single-flight opening, one bounded session, request caps overall and per backend, clean close."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import attrs
import pytest
from accounting_bridge.adapters.memory import MemoryAdapter
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.settings import CommonSettings
from accounting_bridge.sync import LedgerPool
from accounting_bridge.sync.limits import PoolGate, Slots
from accounting_bridge.transport.http import Request, Transport


def memory_profiles(*names: str) -> dict[str, dict[str, Any]]:
    return {name: {"backend": "memory", "company": name} for name in names}


# --- opening and closing ------------------------------------------------------------------------------------------


class CountingMemory(MemoryAdapter):
    name: ClassVar[str] = "counting-memory"
    built: ClassVar[int] = 0

    def __init__(self, settings: Any) -> None:
        type(self).built += 1
        super().__init__(settings)


@pytest.fixture
def counting_memory() -> Iterator[type[CountingMemory]]:
    CountingMemory.built = 0
    ab.register(CountingMemory.name, CountingMemory)
    yield CountingMemory
    ab.unregister(CountingMemory.name)


async def test_fifty_concurrent_gets_open_one_ledger(counting_memory: type[CountingMemory]) -> None:
    async with LedgerPool({"x": {"backend": counting_memory.name}, "y": {"backend": "memory"}}) as pool:
        ledgers = await asyncio.gather(*(pool.get("x") for _ in range(50)))
        assert counting_memory.built == 1
        assert all(ledger is ledgers[0] for ledger in ledgers)
        assert pool.opened == ["x"]  # "y" is not opened until asked for
        assert pool.names() == ["x", "y"]


class SlowMemory(MemoryAdapter):
    """Its construction (done in a worker thread by the pool) waits until the test lets it go on."""

    name: ClassVar[str] = "slow-memory"
    go_on: ClassVar[threading.Event]
    built: ClassVar[list[SlowMemory]]
    closed: bool = False

    def __init__(self, settings: Any) -> None:
        assert type(self).go_on.wait(10)
        super().__init__(settings)
        type(self).built.append(self)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def slow_memory() -> Iterator[type[SlowMemory]]:
    SlowMemory.go_on, SlowMemory.built = threading.Event(), []
    ab.register(SlowMemory.name, SlowMemory)
    yield SlowMemory
    SlowMemory.go_on.set()
    ab.unregister(SlowMemory.name)


async def test_a_cancelled_caller_leaves_the_opening_to_the_others(slow_memory: type[SlowMemory]) -> None:
    async with LedgerPool({"x": {"backend": slow_memory.name}}) as pool:
        first = asyncio.create_task(pool.get("x"))
        second = asyncio.create_task(pool.get("x"))
        await settle()
        first.cancel()
        slow_memory.go_on.set()
        ledger = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        assert [ledger.adapter] == slow_memory.built
        assert await pool.get("x") is ledger


async def test_closing_the_pool_while_a_ledger_opens_closes_that_ledger(slow_memory: type[SlowMemory]) -> None:
    pool = LedgerPool({"x": {"backend": slow_memory.name}})
    opening = asyncio.create_task(pool.get("x"))
    await settle()
    closing = asyncio.create_task(pool.aclose())
    await settle()
    slow_memory.go_on.set()
    await closing
    with pytest.raises(ab.ConfigurationError, match="closed while the ledger was being opened"):
        await opening
    assert [adapter.closed for adapter in slow_memory.built] == [True]


class HeldClose(MemoryAdapter):
    """Its `aclose` finishes only when the test lets it."""

    name: ClassVar[str] = "held-close-memory"
    go_on: ClassVar[asyncio.Event]
    finished: ClassVar[list[str]]

    async def aclose(self) -> None:
        await type(self).go_on.wait()
        type(self).finished.append(self.settings.company)  # type: ignore[attr-defined]


@pytest.fixture
def held_close() -> Iterator[type[HeldClose]]:
    HeldClose.go_on, HeldClose.finished = asyncio.Event(), []
    ab.register(HeldClose.name, HeldClose)
    yield HeldClose
    ab.unregister(HeldClose.name)


async def test_a_cancelled_close_still_closes_every_ledger_and_the_session(held_close: type[HeldClose]) -> None:
    pool = LedgerPool({"x": {"backend": held_close.name, "company": "X AG"}})
    await pool.get("x")
    closing = asyncio.create_task(pool.aclose())
    await settle()
    closing.cancel()  # e.g. a second Ctrl-C while the pool closes
    with pytest.raises(asyncio.CancelledError):
        await closing
    held_close.go_on.set()
    await pool.aclose()  # waits for the closing that was started, to its end
    assert held_close.finished == ["X AG"]
    assert pool.session is not None and pool.session.closed


async def test_a_failed_opening_is_tried_again_on_the_next_get(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POOL_TEST_COMPANY", raising=False)
    async with LedgerPool({"x": {"backend": "memory", "company": {"env": "POOL_TEST_COMPANY"}}}) as pool:
        with pytest.raises(ab.ConfigurationError, match="POOL_TEST_COMPANY"):
            await pool.get("x")
        monkeypatch.setenv("POOL_TEST_COMPANY", "Later AG")
        assert (await (await pool.get("x")).companies())[0].name == "Later AG"


async def test_an_unknown_profile_is_named_with_a_suggestion() -> None:
    async with LedgerPool(memory_profiles("acme", "globex")) as pool:
        with pytest.raises(ab.ConfigurationError, match=r"no profile named 'acme2' \(did you mean `acme`\?\)"):
            await pool.get("acme2")
        with pytest.raises(ab.ConfigurationError, match="profiles: acme, globex"):
            await pool.get("zzz")


async def test_a_bad_setting_names_the_profile() -> None:
    async with LedgerPool({"acme": {"backend": "memory", "colour": "red"}}) as pool:
        with pytest.raises(ab.ConfigurationError, match=r"profile 'acme': unknown setting\(s\) colour"):
            await pool.get("acme")


async def test_a_missing_variable_fails_only_its_own_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        textwrap.dedent(
            """
            [ok]
            backend = "memory"
            company = { env = "POOL_TEST_COMPANY" }

            [broken]
            backend = "runmyaccounts"
            tenant = "t"
            api_key = { env = "POOL_TEST_MISSING_KEY" }
            """
        )
    )
    monkeypatch.setenv("POOL_TEST_COMPANY", "Books AG")
    monkeypatch.delenv("POOL_TEST_MISSING_KEY", raising=False)
    async with LedgerPool(path) as pool:
        assert (await (await pool.get("ok")).companies())[0].name == "Books AG"
        with pytest.raises(ab.ConfigurationError) as caught:
            await pool.get("broken")
        assert "'broken'" in str(caught.value) and "'api_key'" in str(caught.value)
        assert "'POOL_TEST_MISSING_KEY'" in str(caught.value)


async def test_a_closed_pool_refuses_more() -> None:
    pool = LedgerPool(memory_profiles("a", "b"))
    async with pool:
        await pool.get("a")
    with pytest.raises(ab.ConfigurationError, match="closed"):
        await pool.get("a")
    with pytest.raises(ab.ConfigurationError, match="closed"):
        await pool.__aenter__()


async def test_profiles_of_one_credential_share_its_limiter_and_every_ledger_the_session() -> None:
    rma = {"backend": "runmyaccounts", "base_url": "http://127.0.0.1:9/api/", "api_key": "same-key"}
    profiles = {
        "t1": {**rma, "tenant": "t1"},
        "t2": {**rma, "tenant": "t2"},
        "t3": {**rma, "tenant": "t3", "api_key": "other"},
    }
    async with LedgerPool(profiles) as pool:
        t1, t2, t3 = [(await pool.get(name)).adapter.transport for name in ("t1", "t2", "t3")]  # type: ignore[attr-defined]
        assert t1.limiter is t2.limiter
        assert t3.limiter is not t1.limiter
        assert t1.session is t2.session is t3.session is pool.session
    assert pool.session is not None and pool.session.closed


async def test_a_callers_session_is_used_and_left_open() -> None:
    profiles = {"t": {"backend": "runmyaccounts", "base_url": "http://127.0.0.1:9/api/", "api_key": "k", "tenant": "t"}}
    connector = aiohttp.TCPConnector(limit=7, limit_per_host=5)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(ab.ConfigurationError, match="max_concurrency=8 exceeds the connection limit 7 "):
            LedgerPool(profiles, session=session, max_concurrency=8)
        async with LedgerPool(profiles, session=session) as pool:
            transport = (await pool.get("t")).adapter.transport  # type: ignore[attr-defined]
            assert transport.session is session
            assert pool._overall.size == 7 and pool._max_per_backend == 5
        assert not session.closed
        assert transport._closed


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"limit": -1}, "limit must be a whole number >= 0"),
        ({"max_concurrency": 0}, "max_concurrency must be a whole number >= 1"),
        ({"limit_per_host": 4, "max_concurrency_per_backend": 5}, "max_concurrency_per_backend=5 exceeds"),
        ({"max_concurrency_per_backend": 5, "max_concurrency_per_ledger": 6}, "per_ledger=6 exceeds max_concurrency_"),
    ],
)
def test_bad_limits_are_configuration_errors(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ab.ConfigurationError, match=expected):
        LedgerPool(memory_profiles("a"), **kwargs)


# --- request caps (held per attempt, through the transport's gate) -------------------------------------------------

HANG_GUARD = 5.0  # a call that should not wait at all gets this long before the test fails


@attrs.define
class Hub:
    """A server for the probe backends at ``/<backend>/<what>``: "warm" at once (a limiter's first request, which
    it lets go alone), a scripted answer for `what` if one is queued, else it counts the request in flight and
    answers when `release` is set."""

    release: asyncio.Event = attrs.field(factory=asyncio.Event)
    script: dict[str, list[web.Response]] = attrs.field(factory=dict)
    in_flight: dict[str, int] = attrs.field(factory=dict)
    peak: dict[str, int] = attrs.field(factory=dict)
    peak_total: int = 0
    seen: list[str] = attrs.field(factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        backend, what = request.match_info["backend"], request.match_info["what"]
        if what == "warm":
            return web.Response(text=what)
        self.seen.append(what)
        queued = self.script.get(what)
        if queued:
            return queued.pop(0)
        self.in_flight[backend] = self.in_flight.get(backend, 0) + 1
        self.peak[backend] = max(self.peak.get(backend, 0), self.in_flight[backend])
        self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
        try:
            await self.release.wait()
        finally:
            self.in_flight[backend] -= 1
        return web.Response(text=what)


@attrs.frozen(kw_only=True)
class ProbeSettings(CommonSettings):
    hub: Any = None


class ProbeA(ab.AdapterBase):
    """An adapter whose transport is the real one, sending to the hub."""

    name: ClassVar[str] = "probe-a"
    settings_class: ClassVar[type[Any]] = ProbeSettings

    def __init__(self, settings: ProbeSettings) -> None:
        self.settings = settings
        base = f"{settings.hub.url if settings.hub else 'http://127.0.0.1:9'}/{self.name}/"
        self.transport = Transport(settings.transport_config(self.name, base), session=settings.session)

    async def aclose(self) -> None:
        await self.transport.aclose()


class ProbeB(ProbeA):
    name: ClassVar[str] = "probe-b"


@pytest.fixture
async def probes() -> AsyncIterator[Hub]:
    hub = Hub()
    app = web.Application()
    app.router.add_route("*", "/{backend}/{what}", hub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hub.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    for adapter in (ProbeA, ProbeB):
        ab.register(adapter.name, adapter)
    try:
        yield hub
    finally:
        hub.release.set()
        for adapter in (ProbeA, ProbeB):
            ab.unregister(adapter.name)
        await runner.cleanup()


async def until(condition: Callable[[], bool]) -> None:
    """Poll with a deadline: requests reach the in-process server through real sockets."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + 10
    while not condition():
        assert loop.time() < give_up_at, "not reached in time"
        await asyncio.sleep(0.005)


async def transport_of(pool: LedgerPool, name: str) -> Transport:
    """The transport of a pool's ledger, its limiter past its first request (a probe, let go alone)."""
    transport = (await pool.get(name)).adapter.transport  # type: ignore[attr-defined]
    assert isinstance(transport, Transport)
    await get(transport, "warm")
    return transport


async def get(transport: Transport, what: str, method: str = "GET") -> str:
    return (await transport.send(Request(method, what))).text()


def waiting(pool: LedgerPool) -> int:
    return pool._overall.waiting + sum(slots.waiting for slots in pool._per_backend.values())


class HeldSleep:
    """A transport's sleep that records the delay and returns only when `go_on` is set."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.go_on = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await self.go_on.wait()


async def settle() -> None:
    """Let every runnable task run until it blocks (no I/O here: the loop reaches a fixed point)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_requests_hold_a_slot_overall_and_per_backend(probes: Hub) -> None:
    profiles = {f"{b}{i}": {"backend": f"probe-{b}", "hub": probes} for b in "ab" for i in range(3)}
    async with LedgerPool(profiles, max_concurrency=3, max_concurrency_per_backend=2) as pool:
        transports = [await transport_of(pool, name) for name in pool.names()]
        calls = [asyncio.create_task(get(transport, "read")) for transport in transports for _ in range(2)]
        await until(lambda: sum(probes.in_flight.values()) == 3 and waiting(pool) == 9)
        assert max(probes.in_flight.values()) == 2
        probes.release.set()
        assert await asyncio.gather(*calls) == ["read"] * 12
    assert probes.peak_total == 3 and max(probes.peak.values()) == 2


async def test_a_call_backing_off_for_retry_after_holds_no_slot(probes: Hub) -> None:
    probes.release.set()
    probes.script["flaky"] = [web.Response(status=503, headers={"Retry-After": "5"})]
    profiles = {"flaky": {"backend": "probe-a", "hub": probes}, "other": {"backend": "probe-a", "hub": probes}}
    async with LedgerPool(profiles, max_concurrency=1) as pool:
        flaky, other = await transport_of(pool, "flaky"), await transport_of(pool, "other")
        flaky.sleep = backoff = HeldSleep()
        backing_off = asyncio.create_task(get(flaky, "flaky"))
        await until(lambda: backoff.delays == [5.0])
        assert await asyncio.wait_for(get(other, "other"), HANG_GUARD) == "other"  # the only slot is free
        backoff.go_on.set()
        assert await backing_off == "flaky"
        assert pool._overall.taken == 0


async def test_a_call_waiting_for_its_rate_limit_reset_holds_no_slot(probes: Hub) -> None:
    probes.release.set()
    spent = {"X-Rate-Limit-Limit": "10", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "30"}
    probes.script["spend"] = [web.Response(text="spent", headers=spent)]
    profiles = {"limited": {"backend": "probe-a", "hub": probes}, "other": {"backend": "probe-b", "hub": probes}}
    async with LedgerPool(profiles, max_concurrency=1) as pool:
        limited, other = await transport_of(pool, "limited"), await transport_of(pool, "other")
        assert await get(limited, "spend") == "spent"
        parked = asyncio.create_task(get(limited, "later"))  # waits 30 s for the window's reset
        await until(lambda: limited.limiter.waiting == 1)
        assert await asyncio.wait_for(get(other, "other"), HANG_GUARD) == "other"
        parked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await parked
        assert "later" not in probes.seen and pool._overall.taken == 0


async def test_a_look_up_deciding_a_lost_write_needs_no_second_slot(probes: Hub) -> None:
    probes.release.set()
    probes.script["write"] = [web.Response(status=500)]  # the write may or may not have been performed
    async with LedgerPool({"a": {"backend": "probe-a", "hub": probes}}, max_concurrency=1) as pool:
        transport = await transport_of(pool, "a")

        async def look_up() -> bool:
            return await get(transport, "found") == "found"

        sent = transport.send(Request("POST", "write"), lookup=look_up)
        assert (await asyncio.wait_for(sent, HANG_GUARD)).confirmed_by_lookup
        assert probes.seen == ["write", "found"]


async def test_a_ledger_cap_keeps_a_busy_tenant_to_its_share(probes: Hub) -> None:
    profiles = {"busy": {"backend": "probe-a", "hub": probes}, "quiet": {"backend": "probe-a", "hub": probes}}
    async with LedgerPool(profiles, max_concurrency_per_backend=4, max_concurrency_per_ledger=2) as pool:
        busy, quiet = await transport_of(pool, "busy"), await transport_of(pool, "quiet")
        calls = [asyncio.create_task(get(busy, f"busy-{n}")) for n in range(6)]
        calls.append(asyncio.create_task(get(quiet, "quiet")))
        await until(lambda: probes.in_flight.get("probe-a") == 3 and "quiet" in probes.seen)
        assert probes.in_flight["probe-a"] == 3  # two of the busy tenant's (the rest queue on its own) + the quiet one
        probes.release.set()
        await asyncio.gather(*calls)


async def test_without_a_ledger_cap_one_tenant_may_use_all_of_a_backends_slots(probes: Hub) -> None:
    async with LedgerPool({"a": {"backend": "probe-a", "hub": probes}}, max_concurrency_per_backend=3) as pool:
        transport = await transport_of(pool, "a")
        calls = [asyncio.create_task(get(transport, f"n{n}")) for n in range(5)]
        await until(lambda: probes.in_flight.get("probe-a") == 3 and waiting(pool) == 2)
        probes.release.set()
        await asyncio.gather(*calls)
    assert probes.peak["probe-a"] == 3


async def test_a_cancelled_waiter_leaves_no_slot_taken(probes: Hub) -> None:
    async with LedgerPool({"a": {"backend": "probe-a", "hub": probes}}, max_concurrency=1) as pool:
        transport = await transport_of(pool, "a")
        first = asyncio.create_task(get(transport, "first"))
        await until(lambda: probes.in_flight.get("probe-a") == 1)
        second = asyncio.create_task(get(transport, "second"))
        await until(lambda: waiting(pool) == 1)
        second.cancel()
        probes.release.set()
        assert await first == "first"
        with pytest.raises(asyncio.CancelledError):
            await second
        assert await get(transport, "third") == "third"
        assert pool._overall.taken == 0 and waiting(pool) == 0
        assert transport.limiter.in_flight == 0


async def test_waiting_for_a_slot_is_bounded_by_the_deadline(probes: Hub) -> None:
    profiles = {
        "slow": {"backend": "probe-a", "hub": probes},
        "quick": {"backend": "probe-a", "hub": probes, "deadline": 0.05},
    }
    async with LedgerPool(profiles, max_concurrency=1) as pool:
        holder = asyncio.create_task(get(await transport_of(pool, "slow"), "held"))
        await until(lambda: probes.in_flight.get("probe-a") == 1)
        with pytest.raises(ab.DeadlineExceeded, match="waiting for a request slot of its pool") as caught:
            await get(await transport_of(pool, "quick"), "never")
        assert caught.value.deadline == 0.05 and "never" not in probes.seen
        probes.release.set()
        assert await holder == "held"
        assert pool._overall.taken == 0 and waiting(pool) == 0


async def test_a_slot_handed_to_a_waiter_cancelled_before_it_ran_is_passed_on() -> None:
    slots = Slots(1)
    await slots.acquire()
    second = asyncio.create_task(slots.acquire())
    third = asyncio.create_task(slots.acquire())
    await settle()
    slots.release()  # handed to `second` ...
    second.cancel()  # ... which is cancelled before it runs: `third` must get the slot
    await settle()
    assert third.done() and not third.cancelled()
    assert slots.taken == 1 and slots.waiting == 0
    slots.release()
    assert slots.taken == 0


async def test_a_gate_that_times_out_or_is_cancelled_keeps_no_slot() -> None:
    own, shared = Slots(1), Slots(1)
    await shared.acquire()
    gate = PoolGate((own, shared))
    assert not await gate.acquire(0.01)  # `own` was taken, `shared` never came: `own` is given back
    assert own.taken == 0
    waiter = asyncio.create_task(gate.acquire(60))
    await settle()
    assert own.taken == 1 and shared.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert own.taken == 0 and shared.waiting == 0 and shared.taken == 1


async def test_shared_state_is_handed_to_profiles_without_their_own(probes: Hub) -> None:
    profiles = {"a": {"backend": "probe-a"}, "b": {"backend": "probe-a", "shared_state": "redis://own:6379/1"}}
    async with LedgerPool(profiles, shared_state="redis://pool:6379/0") as pool:
        assert (await pool.get("a")).adapter.settings.shared_state == "redis://pool:6379/0"  # type: ignore[attr-defined]
        assert (await pool.get("b")).adapter.settings.shared_state == "redis://own:6379/1"  # type: ignore[attr-defined]
