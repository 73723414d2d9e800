"""One ledger, created outside any event loop, used across 20 consecutive `asyncio.run` calls (issue #14.5, #14.12).

Every run works, and nothing grows from run to run: token slots and limiters (registries keyed by event loop), open
aiohttp sessions, secrets held by the redactor, and closed event loops kept alive. The sandboxes are served from
their own event loop in a background thread, so they outlive the runs.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import aiohttp
import pytest
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.transport import auth as auth_module
from accounting_bridge.transport import ratelimit

RUNS = 20
CLIENT_ID, CLIENT_SECRET = "client-many-loops", "cs_many_loops_secret_value"
API_KEY = "rma-many-loops-key-4711"


class Served(Protocol):
    async def start(self) -> str: ...


class BackgroundLoop:
    """An event loop in a daemon thread, for servers that must outlive the loops of `asyncio.run`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any]) -> Any:
        async def wrapped() -> Any:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def background() -> Iterator[BackgroundLoop]:
    served = BackgroundLoop()
    yield served
    served.close()


@pytest.fixture
def smallinvoice(background: BackgroundLoop) -> Iterator[SmallInvoiceSandbox]:
    sandbox = SmallInvoiceSandbox()
    sandbox.add_client(CLIENT_ID, CLIENT_SECRET)
    background.run(sandbox.start())
    yield sandbox
    background.run(sandbox.stop())


@pytest.fixture
def runmyaccounts(background: BackgroundLoop) -> Iterator[RmaSandbox]:
    sandbox = RmaSandbox(mandant="demo", api_key=API_KEY)
    background.run(sandbox.start())
    yield sandbox
    background.run(sandbox.stop())


def open_sessions() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed)


def registry_sizes() -> dict[str, int]:
    """Entries of the per-event-loop registries (loops, and what they hold).

    Closed loops that something outside the SDK keeps alive may still be keys (aiohttp's `web_app` caches the
    sandbox applications of earlier tests, and an application holds its loop): "open" counts only loops that
    are not closed; the totals must not grow from run to run either.
    """
    token_loops, limiter_loops = list(auth_module._SLOTS.items()), list(ratelimit._LIMITERS.items())
    return {
        "token loops": len(token_loops),
        "token slots": sum(len(slots) for _, slots in token_loops),
        "open token loops": sum(1 for loop, _ in token_loops if not loop.is_closed()),
        "limiter loops": len(limiter_loops),
        "limiters": sum(len(limiters) for _, limiters in limiter_loops),
        "open limiter loops": sum(1 for loop, _ in limiter_loops if not loop.is_closed()),
        "process tokens": len(auth_module._TOKENS),
    }


def run_many_times(ledger: ab.Ledger, call: Callable[[ab.Ledger], Awaitable[object]]) -> list[dict[str, int]]:
    """Use the ledger in `RUNS` consecutive `asyncio.run` calls; what was held after each (measured in the run)."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    held: list[dict[str, int]] = []

    async def one_run() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await call(ledger)
        gc.collect()  # what earlier runs left behind and nothing references any more is gone now
        held.append(
            {
                **registry_sizes(),
                "open sessions": open_sessions(),
                "secrets held": len(ledger.adapter.transport.redactor),  # type: ignore[attr-defined]
            }
        )

    for _ in range(RUNS):
        asyncio.run(one_run())
    asyncio.run(ledger.aclose())
    gc.collect()
    assert [ref for ref in loops if ref() is not None] == []  # every closed loop was freed
    assert open_sessions() == 0
    return held


def assert_no_growth(held: list[dict[str, int]]) -> None:
    first = held[1]  # the second run: a token renewal has happened, so a previous token exists
    for number, later in enumerate(held[2:], start=3):
        assert later == first, f"run {number} holds more than run 2: {later} vs {first}"
    last = held[-1]
    assert last["open token loops"] <= 1 and last["open limiter loops"] <= 1  # only the running loop
    assert last["token loops"] <= 1  # a closed loop's tokens are dropped, whoever keeps the loop alive
    assert last["open sessions"] <= 1


async def smallinvoice_call(ledger: ab.Ledger) -> object:
    owner = await ledger.adapter.owner()  # type: ignore[attr-defined]
    assert owner["id"] == 1
    return owner


async def runmyaccounts_call(ledger: ab.Ledger) -> object:
    customers = [c async for c in ledger.customers.list()]
    assert isinstance(customers, list)
    return customers


def test_a_smallinvoice_ledger_across_many_asyncio_runs(smallinvoice: SmallInvoiceSandbox) -> None:
    ledger = ab.connect(  # outside any running loop, as a platform creates its ledgers
        "smallinvoice", base_url=smallinvoice.base_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    held = run_many_times(ledger, smallinvoice_call)
    assert_no_growth(held)
    assert held[-1]["secrets held"] <= 3  # the client secret, the current and the previous access token
    assert smallinvoice.grant_types == ["client_credentials"]  # one token for the process, reused by every run


def test_an_api_key_ledger_across_many_asyncio_runs(runmyaccounts: RmaSandbox) -> None:
    ledger = ab.connect("runmyaccounts", tenant="demo", api_key=API_KEY, base_url=runmyaccounts.base_url)
    held = run_many_times(ledger, runmyaccounts_call)
    assert_no_growth(held)
    assert held[-1]["secrets held"] == 1  # the api key
