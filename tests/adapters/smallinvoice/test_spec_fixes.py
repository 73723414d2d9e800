"""Issue 13 defects 1-3 and item 3, issue 9 item 2 and issue 15 items 1 and 3 for smallinvoice, end to end."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest
from accounting_bridge.adapters.smallinvoice import SmallInvoiceAdapter
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep

ADDRESS = ab.Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH")


def customer(number: str = "K-1", **changes: Any) -> ab.Customer:
    return attrs.evolve(ab.Customer(number=number, name=f"Kunde {number}", address=ADDRESS, currency="CHF"), **changes)


def invoice(number: str, **changes: Any) -> ab.Invoice:
    base = ab.Invoice(
        number=number, customer_number="K-1", issue_date=dt.date(2024, 5, 1), due_date=dt.date(2024, 5, 31),
        lines=[ab.InvoiceLine(description="Beratung", quantity=Decimal(2), unit_price=Decimal("120.00"),
                              tax_rate=Decimal("8.1"), unit="hour")],
    )  # fmt: skip
    return attrs.evolve(base, **changes)


@pytest.fixture
async def ledger(connect: Callable[..., ab.Ledger]) -> AsyncIterator[ab.Ledger]:
    async with connect() as opened:
        opened.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
        await opened.customers.upsert(customer())
        yield opened


def requests(sandbox: SmallInvoiceSandbox, method: str, part: str) -> list[str]:
    return [path for m, path, _status, _rid in sandbox.request_log if m == method and part in path]


async def test_an_address_change_goes_through_the_address_sub_resource(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    moved = ab.Address(street="Neuweg 2", postcode="3000", city="Bern", country="CH")
    await ledger.customers.upsert(customer(address=moved))
    assert (await ledger.customers.get("K-1")).address == moved  # ContactPUT has no address: it was dropped
    assert len(requests(sandbox, "PUT", "/addresses/")) == 1
    await ledger.customers.upsert(customer(address=moved))  # nothing changed: nothing written
    assert len(requests(sandbox, "PUT", "/contacts/")) == 1


async def test_every_e_mail_recipient_has_a_name(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    await ledger.invoices.create(invoice("R-1"))
    adapter = ledger.adapter
    assert isinstance(adapter, SmallInvoiceAdapter)
    await adapter.send_invoice_by_email("R-1", recipients=["a@muster.ch"], subject="Rechnung", body="Hallo")
    assert sandbox.sent_emails[0]["recipients"] == [{"email": "a@muster.ch", "name": "a@muster.ch"}]


async def test_change_status_sends_no_undeclared_with(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    await ledger.invoices.create(invoice("R-1", status=ab.InvoiceStatus.DRAFT))
    adapter = ledger.adapter
    assert isinstance(adapter, SmallInvoiceAdapter)
    changed = await adapter.change_invoice_status("R-1", ab.InvoiceStatus.OPEN)
    assert changed.status is ab.InvoiceStatus.OPEN and changed.customer_number == "K-1"
    assert [p for p in requests(sandbox, "PATCH", "/change-status") if "with=" in p] == []


async def test_status_rule_open_unless_draft_and_its_cost(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    before = len(sandbox.request_log)
    opened = await ledger.invoices.create(invoice("R-1"))
    assert opened.status is ab.InvoiceStatus.OPEN
    after_open = len(sandbox.request_log)
    draft = await ledger.invoices.create(invoice("R-2", status=ab.InvoiceStatus.DRAFT))
    assert draft.status is ab.InvoiceStatus.DRAFT
    # first create: units once + POST + change-status; the contact came from the cache of the upsert
    assert after_open - before == 3
    assert len(sandbox.request_log) - after_open == 1  # a draft: one POST
    assert [i.number async for i in ledger.invoices.list(status=ab.InvoiceStatus.OPEN)] == ["R-1"]
    with pytest.raises(ab.ValidationError):
        await ledger.invoices.create(invoice("R-3", status=ab.InvoiceStatus.PAID))


async def test_32_concurrent_first_creates_share_one_units_and_one_contact_look_up(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async with connect() as setup:
        await setup.customers.upsert(customer())
    async with connect() as ledger:  # a fresh ledger: nothing cached yet
        before = len(sandbox.request_log)
        drafts = [invoice(f"R-{i}", status=ab.InvoiceStatus.DRAFT) for i in range(32)]
        await asyncio.gather(*(ledger.invoices.create(i) for i in drafts))
        sent = sandbox.request_log[before:]
    assert sum(1 for _m, p, _s, _r in sent if "/catalog/configuration/units" in p) == 1
    assert sum(1 for m, p, _s, _r in sent if m == "GET" and "/contacts" in p) == 1
    assert sum(1 for m, p, _s, _r in sent if m == "POST" and "/receivables/invoices" in p) == 32
    assert (len(sent) - 2) / 32 == 1.0  # requests per created draft beyond the two shared look-ups


async def test_concurrent_creates_of_one_number_are_idempotent(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    results = await asyncio.gather(*(ledger.invoices.create(invoice("R-1")) for _ in range(5)))
    assert {r.id for r in results} == {results[0].id} and len(sandbox.invoices) == 1
    assert {r.status for r in results} == {ab.InvoiceStatus.OPEN}
    with pytest.raises(ab.Conflict):
        await ledger.invoices.create(invoice("R-1", issue_date=dt.date(2024, 5, 2)))


async def test_a_too_narrow_filter_cannot_make_a_lost_create_look_absent(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.filter_mode = "empty"  # every filtered list answers nothing
    sandbox.drop_next(path="/receivables/invoices", method="POST", after_commit=True)
    created = await ledger.invoices.create(invoice("R-1", status=ab.InvoiceStatus.DRAFT))
    assert created.number == "R-1" and len(sandbox.invoices) == 1
    # the bounded scan confirmed the invoice was there: the create was not sent again
    assert len(requests(sandbox, "POST", "/receivables/invoices")) == 1


async def test_cancel_delete_and_by_id_look_ups(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    assert ledger.supports(ab.Capability.INVOICES_CANCEL)
    created = await ledger.invoices.create(invoice("R-1"))
    adapter = ledger.adapter
    assert isinstance(adapter, SmallInvoiceAdapter)
    assert (await adapter.get_invoice_by_id(created.id or "")).number == "R-1"
    assert (await adapter.get_customer_by_id(int((await ledger.customers.get("K-1")).id or 0))).number == "K-1"
    sent = len(sandbox.request_log)
    with pytest.raises(ab.ValidationError) as info:
        await adapter.get_invoice_by_id("../contacts")
    assert info.value.fields == ("invoice_id",) and len(sandbox.request_log) == sent
    assert (await ledger.invoices.cancel("R-1")).status is ab.InvoiceStatus.CANCELLED
    assert (await ledger.invoices.cancel("R-1")).status is ab.InvoiceStatus.CANCELLED  # again: no error
    await adapter.delete_invoice("R-1")
    assert (await ledger.invoices.get("R-1")).raw["status"] == "D"  # type: ignore[index]


async def test_a_create_whose_status_change_failed_is_opened_by_sending_it_again(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.fail_next(500, count=8, path="/change-status", method="PATCH")  # more than every attempt
    with pytest.raises(ab.WriteOutcomeUnknown, match=r"still a draft.*send the same invoice again") as info:
        await ledger.invoices.create(invoice("R-1"))  # the caller hears what is left behind and how to finish it
    assert info.value.reference == "R-1"
    assert [i["status"] for i in sandbox.invoices.values()] == ["DR"]  # created, still a draft
    sandbox.scripted_faults.clear()
    again = await ledger.invoices.create(invoice("R-1"))
    assert again.status is ab.InvoiceStatus.OPEN and len(sandbox.invoices) == 1


async def test_a_5xx_after_the_create_landed_gives_one_open_invoice(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.garble_next(status=502, path="/receivables/invoices", method="POST")  # performed, then a 502
    created = await ledger.invoices.create(invoice("R-1"))
    assert created.status is ab.InvoiceStatus.OPEN and len(sandbox.invoices) == 1
    assert len(requests(sandbox, "POST", "/receivables/invoices")) == 1  # the look-up found it: not sent again


async def test_concurrent_creates_of_one_number_with_other_content_give_one_invoice_and_conflicts(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    days = [dt.date(2024, 5, day) for day in (1, 2, 3)]
    results = await asyncio.gather(
        *(ledger.invoices.create(invoice("R-1", issue_date=day)) for day in days), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Conflict", "Invoice"]
    assert len(sandbox.invoices) == 1
