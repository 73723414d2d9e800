"""Sandboxes as multi-tenant test beds: each tenant has its own books, numbers never collide across tenants."""

from __future__ import annotations

import asyncio
import datetime as _dt
from decimal import Decimal
from typing import Any

import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge import sandbox as sandboxes
from accounting_bridge.testing import FakeSleep

BACKENDS = ["multiregnskab", "multiregnskab-s2s", "runmyaccounts", "smallinvoice"]
DAY = _dt.date.today()


def customer(name: str, number: str = "K-1") -> ab.Customer:
    address = ab.Address(street="Rössliweg 1", postcode="3000", city="Bern", country="CH")
    return ab.Customer(number=number, name=name, address=address, email="ap@example.ch")


def invoice(number: str = "R-1", customer_number: str = "K-1") -> ab.Invoice:
    line = ab.InvoiceLine(description="Beratung", quantity=Decimal(2), unit_price=Decimal("140.00"))
    return ab.Invoice(
        number=number, customer_number=customer_number, issue_date=DAY, due_date=DAY + _dt.timedelta(days=30),
        currency="CHF", lines=[line],
    )  # fmt: skip


def connect(sandbox: Any, settings: dict[str, Any], **extra: Any) -> ab.Ledger:
    ledger = ab.connect(sandbox.backend, base_url=sandbox.base_url, **settings, **extra)
    ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
    return ledger


async def names(ledger: ab.Ledger) -> set[str]:
    return {c.name async for c in ledger.customers.list()}


async def test_fifty_tenants_on_one_smallinvoice_sandbox_each_see_only_their_own_books() -> None:
    async with SmallInvoiceSandbox() as sandbox:
        tenants = {f"tenant-{i:02d}": sandbox.add_tenant(f"tenant-{i:02d}") for i in range(50)}

        async def work(name: str, settings: dict[str, Any]) -> tuple[set[str], list[str]]:
            async with connect(sandbox, settings) as ledger:
                await ledger.customers.upsert(customer(f"{name} AG"))  # the same number in every tenant
                await ledger.invoices.create(invoice())  # the same invoice number in every tenant
                return await names(ledger), [i.number async for i in ledger.invoices.list()]

        seen = await asyncio.gather(*(work(name, settings) for name, settings in tenants.items()))
        for name, (customers, invoice_numbers) in zip(tenants, seen, strict=True):
            assert customers == {f"{name} AG"} and invoice_numbers == ["R-1"], name
        assert not sandbox.contacts and not sandbox.invoices  # the main account's books stayed empty
        assert all(len(sandbox.books(name).contacts) == 1 for name in tenants)


async def test_smallinvoice_add_client_opens_own_books_unless_it_names_a_tenant() -> None:
    async with SmallInvoiceSandbox() as sandbox:
        sandbox.add_client("alpha", "alpha-secret")
        sandbox.add_client("alpha-second-app", "second-secret", tenant="alpha")
        sandbox.add_client("beta", "beta-secret")
        async with connect(sandbox, {"client_id": "alpha", "client_secret": "alpha-secret"}) as alpha:
            await alpha.customers.upsert(customer("Alpha AG"))
        async with connect(sandbox, {"client_id": "alpha-second-app", "client_secret": "second-secret"}) as second:
            assert await names(second) == {"Alpha AG"}  # another API client of the same account
        async with connect(sandbox, {"client_id": "beta", "client_secret": "beta-secret"}) as beta:
            assert await names(beta) == set()
        assert sandbox.connect_settings("alpha")["client_id"] == "alpha"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_tenants_have_separate_books_on_every_sandbox(backend: str) -> None:
    async with sandboxes.create(backend) as sandbox:
        tenants = ["acme", "globex", "initech"]
        settings = {name: sandbox.add_tenant(name) for name in tenants}
        assert sandbox.add_tenant("acme") == settings["acme"]  # adding again changes nothing
        for name in tenants:
            async with connect(sandbox, settings[name]) as ledger:
                await ledger.customers.upsert(customer(f"{name} AG", number="K-77"))  # one number, every tenant
        for name in tenants:
            async with connect(sandbox, settings[name]) as ledger:
                seen = await names(ledger)
                assert f"{name} AG" in seen and not seen & {f"{other} AG" for other in tenants if other != name}
                assert (await ledger.customers.get("K-77")).name == f"{name} AG"
        async with connect(sandbox, sandbox.connect_settings()) as default:
            assert not await names(default) & {f"{name} AG" for name in tenants}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_seed_fills_only_the_named_tenant(backend: str) -> None:
    async with sandboxes.create(backend) as sandbox:
        own = sandbox.add_tenant("seeded")
        async with connect(sandbox, sandbox.connect_settings()) as default:
            before = await names(default)
            sandbox.seed(tenant="seeded", customers=2, invoices=1)
            assert await names(default) == before
        async with connect(sandbox, own) as ledger:
            assert len(await names(ledger) - before) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unknown_tenant_is_a_configuration_error_naming_the_tenants(backend: str) -> None:
    sandbox = sandboxes.create(backend)
    sandbox.add_tenant("known")
    with pytest.raises(ab.ConfigurationError, match=r"'unknown'.*known"):
        sandbox.connect_settings("unknown")


def test_a_run_my_accounts_tenant_must_fit_in_the_url() -> None:
    with pytest.raises(ab.ConfigurationError, match="URL segment"):
        sandboxes.create("runmyaccounts").add_tenant("acme/../other")


#: posting accounts of each sandbox's chart (debit, credit)
ACCOUNTS = {"runmyaccounts": ("5000", "1091"), "multiregnskab": ("2210", "8270"), "multiregnskab-s2s": ("2210", "8270")}


def payroll(backend: str) -> ab.Registration:
    debit, credit = ACCOUNTS[backend]
    lines = [ab.PostingLine(account=debit, amount=Decimal("800.00")), ab.PostingLine(account=credit, amount=Decimal("-800.00"))]
    return ab.Registration(date=DAY, description="Lohn", lines=lines, reference="payroll-1")


def entries(sandbox: Any, settings: dict[str, Any]) -> int:
    if sandbox.backend == "runmyaccounts":
        return len(sandbox.books(settings["tenant"]).gl)
    return len(sandbox.company(settings["company"]).registrations)


@pytest.mark.parametrize("backend", ["runmyaccounts", "multiregnskab", "multiregnskab-s2s"])
async def test_fifty_tenants_on_one_sandbox_keep_their_own_customers_and_journal(backend: str) -> None:
    async with sandboxes.create(backend) as sandbox:
        tenants = {f"tenant-{i:02d}": sandbox.add_tenant(f"tenant-{i:02d}") for i in range(50)}

        async def work(name: str, settings: dict[str, Any]) -> set[str]:
            async with connect(sandbox, settings) as ledger:
                await ledger.customers.upsert(customer(f"{name} AG", number="K-4711"))  # one number, every tenant
                await ledger.registrations.submit(payroll(backend))  # one reference, every tenant
                if ledger.supports(ab.Capability.REGISTRATION_LOOKUP):
                    assert await ledger.registrations.find("payroll-1", date=DAY) is not None
                return {c.name async for c in ledger.customers.list() if c.number == "K-4711"}

        seen = await asyncio.gather(*(work(name, settings) for name, settings in tenants.items()))
        for name, names_seen in zip(tenants, seen, strict=True):
            assert names_seen == {f"{name} AG"}, name
            assert entries(sandbox, tenants[name]) == 1, name  # booked in its own books: no tenant saw another's
