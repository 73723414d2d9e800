"""Every adapter's sandbox speaks one protocol: discovery, start/stop, connect settings, seed and common faults."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import accounting_bridge as ab
from accounting_bridge import sandbox as sandboxes
from accounting_bridge.testing import FakeSleep

BACKENDS = ["multiregnskab", "multiregnskab-s2s", "runmyaccounts", "smallinvoice"]
TOKEN_BACKENDS = {"smallinvoice", "multiregnskab"}


def customer(number: str, name: str = "Muster AG") -> ab.Customer:
    address = ab.Address(street="Rössliweg 1", postcode="3000", city="Bern", country="CH")
    return ab.Customer(number=number, name=name, address=address, email="ap@muster.ch")


async def numbers(ledger: ab.Ledger) -> list[str]:
    return [c.number async for c in ledger.customers.list()]


@pytest.fixture(params=BACKENDS)
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, ab.Ledger]]:
    async with sandboxes.create(request.param) as sandbox:
        ledger = ab.connect(sandbox.backend, base_url=sandbox.base_url, **sandbox.connect_settings())
        ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
        async with ledger:
            yield sandbox, ledger


def test_sandboxes_are_found_through_the_adapter_registry() -> None:
    assert sandboxes.available_sandboxes() == BACKENDS
    assert sandboxes.sandbox_class("multiregnskab") is sandboxes.sandbox_class("multiregnskab-s2s")


def test_memory_and_unknown_backends_have_no_sandbox() -> None:
    with pytest.raises(ab.ConfigurationError, match="has no sandbox; sandboxes exist for: multiregnskab"):
        sandboxes.create("memory")
    with pytest.raises(ab.ConfigurationError, match="no-such-backend"):
        sandboxes.create("no-such-backend")


def test_a_sandbox_refuses_a_backend_it_does_not_serve() -> None:
    with pytest.raises(ab.ConfigurationError, match="smallinvoice"):
        sandboxes.sandbox_class("runmyaccounts")(backend="smallinvoice")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_start_returns_the_base_url_and_stop_is_idempotent(backend: str) -> None:
    sandbox = sandboxes.create(backend)
    assert isinstance(sandbox, sandboxes.Sandbox) and sandbox.backend == backend
    url = await sandbox.start(host="127.0.0.1", port=0)
    try:
        assert url == sandbox.base_url and url.startswith("http://127.0.0.1:")
        async with ab.connect(backend, base_url=url, **sandbox.connect_settings()) as ledger:
            await numbers(ledger)
        assert sandbox.request_count() >= 1
    finally:
        await sandbox.stop()
        await sandbox.stop()


async def test_seed_adds_realistic_customers_and_invoices(served: tuple[Any, ab.Ledger]) -> None:
    sandbox, ledger = served
    before = await numbers(ledger)
    sandbox.seed(customers=3, invoices=4)
    added = [n for n in await numbers(ledger) if n not in before]
    assert len(added) == 3 and len(set(added)) == 3
    if ledger.supports(ab.Capability.INVOICES_LIST):
        invoices = [i async for i in ledger.invoices.list()]
        assert len(invoices) == 4 and all(i.total and i.total > 0 for i in invoices)


async def test_fail_next_answers_the_status_and_the_client_retries(served: tuple[Any, ab.Ledger]) -> None:
    sandbox, ledger = served
    await numbers(ledger)  # any login first, so the fault hits the listing
    sandbox.faults.fail_next(503, method="GET")
    await numbers(ledger)
    assert sandbox.request_count(status=503) == 1 and sandbox.faults.pending() == 0


async def test_rate_limit_next_answers_429_with_headers(served: tuple[Any, ab.Ledger]) -> None:
    sandbox, ledger = served
    await numbers(ledger)
    sandbox.faults.rate_limit_next(reset=1)
    await numbers(ledger)
    assert sandbox.request_count(status=429) == 1
    assert 1 in ledger.adapter.transport.sleep.delays  # type: ignore[attr-defined]  # waited what the headers said


async def test_drop_after_commit_lands_the_write_once(served: tuple[Any, ab.Ledger]) -> None:
    sandbox, ledger = served
    before = await numbers(ledger)
    sandbox.faults.drop_after_commit()
    created = await ledger.customers.upsert(customer("K-9001"))
    assert created.number == "K-9001"
    assert sandbox.faults.pending("drop") == 0  # the connection really was cut after the write
    assert [n for n in await numbers(ledger) if n not in before] == ["K-9001"]


async def test_expire_tokens_makes_the_next_call_renew(served: tuple[Any, ab.Ledger]) -> None:
    sandbox, ledger = served
    await numbers(ledger)
    sandbox.faults.expire_tokens()
    await numbers(ledger)
    assert sandbox.request_count(status=401) == (1 if sandbox.backend in TOKEN_BACKENDS else 0)


async def test_latency_delays_every_answer(served: tuple[Any, ab.Ledger]) -> None:
    sandbox, _ledger = served
    sandbox.faults.latency = 0.2
    settings = {**sandbox.connect_settings(), "timeout": 0.05, "max_retries": 0}
    async with ab.connect(sandbox.backend, base_url=sandbox.base_url, **settings) as slow:
        with pytest.raises(ab.TransportError):
            await numbers(slow)


async def test_counters_are_numbers_and_reprs_carry_no_credentials(served: tuple[Any, ab.Ledger]) -> None:
    sandbox, ledger = served
    await numbers(ledger)
    assert isinstance(sandbox.request_count(), int) and sandbox.request_count(method="GET") >= 1
    for name in ("token_grants", "invalid_grants", "rate_limited", "logins", "refreshes", "api_requests"):
        assert isinstance(getattr(sandbox, name, 0), int), name
    secrets = [v for v in sandbox.connect_settings().values() if isinstance(v, str) and len(v) > 4]
    assert secrets
    for text in (repr(sandbox), repr(sandbox.faults), str(sandbox)):
        assert not any(secret in text for secret in secrets), text


def test_discovery_imports_no_sandbox_module_until_one_is_created(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from accounting_bridge import sandbox\n"
        "assert sandbox.available_sandboxes()\n"
        "loaded = [m for m in sys.modules if m.endswith('.sandbox') and m != 'accounting_bridge.sandbox']\n"
        "assert not loaded, loaded\n"
        "sandbox.create('multiregnskab-s2s')\n"
        "assert 'accounting_bridge.adapters.multiregnskab.sandbox' in sys.modules\n"
    )
    # outside the source tree: there `accounting_bridge.adapters` exists only as installed, not as ./adapters
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)  # noqa: S603 - our own code


REFUSED: dict[str, tuple[Any, str]] = {
    "status not HTTP": (lambda faults: faults.fail_next(42), "status"),
    "zero count": (lambda faults: faults.fail_next(503, count=0), "count"),
    "negative drops": (lambda faults: faults.drop_after_commit(count=-1), "count"),
}


@pytest.mark.parametrize(("call", "named"), list(REFUSED.values()), ids=list(REFUSED))
def test_a_nonsense_fault_is_refused_naming_the_argument(call: Any, named: str) -> None:
    faults = sandboxes.create("runmyaccounts").faults
    with pytest.raises(ab.ConfigurationError, match=f"'{named}'"):
        call(faults)
    assert faults.pending() == 0
