"""Issue 13 item 3 for every write: a number filter applied too narrowly (an empty answer for a record that exists)
neither duplicates nor refuses a write; and the per-ledger contact cache never lends one tenant's contact to another."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from accounting_bridge.adapters.smallinvoice import SmallInvoiceAdapter
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep

from .test_spec_fixes import customer, invoice


@pytest.fixture
async def narrow(sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]) -> AsyncIterator[ab.Ledger]:
    """K-1 and R-0 exist; then every filtered list answers nothing, for a fresh ledger (nothing cached)."""
    async with connect() as setup:
        await setup.customers.upsert(customer())
        await setup.invoices.create(invoice("R-0"))
    sandbox.filter_mode = "empty"
    async with connect() as ledger:
        ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
        yield ledger


async def test_an_invoice_for_an_existing_customer_is_created(sandbox: SmallInvoiceSandbox, narrow: ab.Ledger) -> None:
    created = await narrow.invoices.create(invoice("R-1"))  # was: "customer 'K-1' does not exist"
    assert created.status is ab.InvoiceStatus.OPEN and len(sandbox.invoices) == 2


async def test_a_payment_to_an_existing_invoice_is_booked(sandbox: SmallInvoiceSandbox, narrow: ab.Ledger) -> None:
    payment = ab.Payment(invoice_number="R-0", date=dt.date(2024, 5, 3), amount=Decimal("10.00"))
    assert (await narrow.payments.create(payment)).amount == Decimal("10.00")  # was: "invoice 'R-0' does not exist"
    assert sum(len(p) for p in sandbox.payments.values()) == 1


async def test_invoice_actions_find_their_invoice(sandbox: SmallInvoiceSandbox, narrow: ab.Ledger) -> None:
    adapter = narrow.adapter
    assert isinstance(adapter, SmallInvoiceAdapter)
    await adapter.send_invoice_by_email("R-0", recipients=["a@muster.ch"], subject="Rechnung", body="Hallo")
    assert (await narrow.invoices.cancel("R-0")).status is ab.InvoiceStatus.CANCELLED  # was: NotFound
    await adapter.delete_invoice("R-0")
    assert len(sandbox.sent_emails) == 1 and [i["status"] for i in sandbox.invoices.values()] == ["D"]


async def test_a_customer_that_cannot_be_created_still_updates_the_existing_one(
    sandbox: SmallInvoiceSandbox, narrow: ab.Ledger
) -> None:
    updated = await narrow.customers.upsert(customer(address=None, email="neu@muster.ch"))  # no address: no create
    assert updated.email == "neu@muster.ch" and len(sandbox.contacts) == 1


async def test_the_contact_cache_is_per_ledger_so_tenants_never_share_a_contact(sandbox: SmallInvoiceSandbox) -> None:
    """Two tenants with the same customer number (different contact ids), invoices created interleaved."""
    url = sandbox.base_url
    async with (
        ab.connect("smallinvoice", base_url=url, **sandbox.add_tenant("a")) as a,
        ab.connect("smallinvoice", base_url=url, **sandbox.add_tenant("b")) as b,
    ):
        await b.customers.upsert(customer("K-0"))  # tenant b's K-1 gets another id than tenant a's
        await asyncio.gather(a.customers.upsert(customer()), b.customers.upsert(customer()))
        ids = {name: (await ledger.customers.get("K-1")).id for name, ledger in (("a", a), ("b", b))}
        assert ids["a"] != ids["b"]
        drafts = [invoice(f"R-{i}", status=ab.InvoiceStatus.DRAFT) for i in range(4)]
        await asyncio.gather(*(ledger.invoices.create(d) for d in drafts for ledger in (a, b)))
    for name in ("a", "b"):
        contact_ids = {str(i["contact_id"]) for i in sandbox.books(name).invoices.values()}
        assert contact_ids == {ids[name]}
