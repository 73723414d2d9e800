"""LedgerPool: lazy single-flight opening, one bounded session, request caps overall and per backend, clean close."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import aiohttp
import attrs
import pytest
from accounting_bridge.adapters.memory import MemoryAdapter

import accounting_bridge as ab
from accounting_bridge.settings import CommonSettings
from accounting_bridge.sync import LedgerPool
from accounting_bridge.sync.limits import Slots


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


# --- request caps -------------------------------------------------------------------------------------------------


@attrs.define
class Hub:
    """Counts the requests in flight of the probe backends; each request waits until `release` is set."""

    release: asyncio.Event = attrs.field(factory=asyncio.Event)
    in_flight: dict[str, int] = attrs.field(factory=dict)
    peak: dict[str, int] = attrs.field(factory=dict)
    peak_total: int = 0
    done: int = 0

    async def request(self, backend: str) -> None:
        self.in_flight[backend] = self.in_flight.get(backend, 0) + 1
        self.peak[backend] = max(self.peak.get(backend, 0), self.in_flight[backend])
        self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
        try:
            await self.release.wait()
        finally:
            self.in_flight[backend] -= 1
            self.done += 1


@attrs.frozen(kw_only=True)
class ProbeSettings(CommonSettings):
    hub: Any = None
    nested: bool = False
    shared_state: str | None = None


class ProbeTransport:
    def __init__(self, backend: str, hub: Hub, nested: bool, deadline: float) -> None:
        self.backend, self.hub, self.nested = backend, hub, nested
        self.config = SimpleNamespace(retry=SimpleNamespace(deadline=deadline))  # as a Transport's

    async def send(self, request: str) -> str:
        if self.nested and request == "write":
            return await self.send("look-up")  # as a lost write is decided by a look-up inside `send`
        await self.hub.request(self.backend)
        return request

    async def aclose(self) -> None:
        return None


class ProbeA(ab.AdapterBase):
    name: ClassVar[str] = "probe-a"
    settings_class: ClassVar[type[Any]] = ProbeSettings

    def __init__(self, settings: ProbeSettings) -> None:
        self.settings = settings
        self.transport = ProbeTransport(self.name, settings.hub, settings.nested, settings.deadline)


class ProbeB(ProbeA):
    name: ClassVar[str] = "probe-b"


@pytest.fixture
def probes() -> Iterator[Hub]:
    for adapter in (ProbeA, ProbeB):
        ab.register(adapter.name, adapter)
    yield Hub()
    for adapter in (ProbeA, ProbeB):
        ab.unregister(adapter.name)


async def settle() -> None:
    """Let every runnable task run until it blocks (no I/O here: the loop reaches a fixed point)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_requests_hold_a_slot_overall_and_per_backend(probes: Hub) -> None:
    profiles = {f"{b}{i}": {"backend": f"probe-{b}", "hub": probes} for b in "ab" for i in range(3)}
    async with LedgerPool(profiles, max_concurrency=3, max_concurrency_per_backend=2) as pool:
        ledgers = [await pool.get(name) for name in pool.names()]
        calls = [asyncio.create_task(led.adapter.transport.send("read")) for led in ledgers for _ in range(2)]
        await settle()
        assert sum(probes.in_flight.values()) == 3
        assert max(probes.in_flight.values()) == 2
        probes.release.set()
        assert await asyncio.gather(*calls) == ["read"] * 12
    assert probes.peak_total == 3 and max(probes.peak.values()) == 2


async def test_one_busy_tenant_never_holds_all_of_a_backends_slots(probes: Hub) -> None:
    profiles = {"busy": {"backend": "probe-a", "hub": probes}, "quiet": {"backend": "probe-a", "hub": probes}}
    async with LedgerPool(profiles, max_concurrency_per_backend=4, max_concurrency_per_ledger=2) as pool:
        busy, quiet = (await pool.get("busy")).adapter.transport, (await pool.get("quiet")).adapter.transport
        calls = [asyncio.create_task(busy.send(f"busy-{n}")) for n in range(6)]
        await settle()
        calls.append(asyncio.create_task(quiet.send("quiet")))
        await settle()
        assert probes.in_flight["probe-a"] == 3  # two of the busy tenant's (the rest queue on its own) + the quiet one
        probes.release.set()
        await asyncio.gather(*calls)


async def test_a_nested_request_takes_no_second_slot(probes: Hub) -> None:
    probes.release.set()
    async with LedgerPool({"a": {"backend": "probe-a", "hub": probes, "nested": True}}, max_concurrency=1) as pool:
        transport = (await pool.get("a")).adapter.transport  # type: ignore[attr-defined]
        assert await asyncio.wait_for(transport.send("write"), 5) == "look-up"


async def test_a_cancelled_waiter_leaves_no_slot_taken(probes: Hub) -> None:
    async with LedgerPool({"a": {"backend": "probe-a", "hub": probes}}, max_concurrency=1) as pool:
        transport = (await pool.get("a")).adapter.transport  # type: ignore[attr-defined]
        first = asyncio.create_task(transport.send("first"))
        second = asyncio.create_task(transport.send("second"))
        await settle()
        second.cancel()
        probes.release.set()
        assert await first == "first"
        with pytest.raises(asyncio.CancelledError):
            await second
        assert await transport.send("third") == "third"
        assert pool._overall.taken == 0 and pool._overall.waiting == 0


async def test_waiting_for_a_slot_is_bounded_by_the_deadline(probes: Hub) -> None:
    profiles = {
        "slow": {"backend": "probe-a", "hub": probes},
        "quick": {"backend": "probe-a", "hub": probes, "deadline": 0.05},
    }
    async with LedgerPool(profiles, max_concurrency=1) as pool:
        holder = asyncio.create_task((await pool.get("slow")).adapter.transport.send("held"))
        await settle()
        with pytest.raises(ab.DeadlineExceeded, match="nothing was sent") as caught:
            await (await pool.get("quick")).adapter.transport.send("never")
        assert caught.value.deadline == 0.05 and probes.done == 0
        probes.release.set()
        assert await holder == "held"
        assert pool._overall.taken == 0 and pool._overall.waiting == 0


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


async def test_shared_state_is_handed_to_profiles_without_their_own(probes: Hub) -> None:
    profiles = {"a": {"backend": "probe-a"}, "b": {"backend": "probe-a", "shared_state": "redis://own:6379/1"}}
    async with LedgerPool(profiles, shared_state="redis://pool:6379/0") as pool:
        assert (await pool.get("a")).adapter.settings.shared_state == "redis://pool:6379/0"  # type: ignore[attr-defined]
        assert (await pool.get("b")).adapter.settings.shared_state == "redis://own:6379/1"  # type: ignore[attr-defined]
