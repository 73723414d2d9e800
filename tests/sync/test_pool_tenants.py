"""The pool's acceptance over real sockets: 200 tenants with their own books and credentials on one session, and
closing the pool closes every connection (none left open on the server, no ResourceWarning)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge.sync import LedgerPool

TENANTS = 200


@pytest.fixture
async def sandbox() -> AsyncIterator[RmaSandbox]:
    async with RmaSandbox() as server:
        yield server


def open_connections(sandbox: Any) -> int:
    """Connections the sandbox's server still holds open (aiohttp's server keeps them alive between requests)."""
    return len(sandbox._runner.server.connections)


async def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll with a deadline: the server notices a closed connection asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


@contextmanager
def no_resource_warnings() -> Iterator[None]:
    """An unclosed session, connector or socket warns when it is collected: collect, and fail on any."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


async def test_200_tenants_on_one_session_each_in_its_own_books(sandbox: RmaSandbox) -> None:
    profiles = {
        f"tenant-{n}": {"backend": "runmyaccounts", "base_url": sandbox.base_url, **sandbox.add_tenant(f"t{n}")}
        for n in range(TENANTS)
    }
    with no_resource_warnings():
        async with LedgerPool(profiles, limit=16, limit_per_host=16) as pool:

            async def book(pool: LedgerPool, name: str) -> str:
                ledger = await pool.get(name)
                await ledger.customers.upsert(ab.Customer(number="K-1", name=f"Kunde von {name}"))
                return (await ledger.customers.get("K-1")).name

            names = await asyncio.gather(*(book(pool, name) for name in pool.names()))
            assert names == [f"Kunde von {name}" for name in pool.names()]  # every tenant sees only its own books
            session = pool.session
            assert session is not None
            ledgers = [await pool.get(name) for name in pool.names()]
            assert {ledger.adapter.transport.session for ledger in ledgers} == {session}  # type: ignore[attr-defined]
            assert len({ledger.adapter.transport.auth.credential_id for ledger in ledgers}) == TENANTS  # type: ignore[attr-defined]
            assert 0 < open_connections(sandbox) <= 16  # kept alive for reuse, within the connector's limit
        assert session.closed
        assert all(ledger.adapter.transport._closed for ledger in ledgers)  # type: ignore[attr-defined]
        await wait_until(lambda: open_connections(sandbox) == 0)
        del ledgers, session, pool


async def test_profiles_of_one_credential_share_its_token() -> None:
    from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

    sandbox = SmallInvoiceSandbox()
    sandbox.add_client("shared-client", "shared-secret")
    await sandbox.start()
    try:
        one = {"backend": "smallinvoice", "base_url": sandbox.base_url, "client_id": "shared-client",
               "client_secret": "shared-secret"}  # fmt: skip
        async with LedgerPool({"a": one, "b": {**one, "timeout": 30}}) as pool:
            ledgers = [await pool.get("a"), await pool.get("b")]
            await asyncio.gather(*(ledger.customers.get("K-1") for ledger in ledgers), return_exceptions=True)
        assert sandbox.request_count("POST", "/auth/access-tokens") == 1  # one renewal for the credential, whichever ledger asked
    finally:
        await sandbox.stop()
