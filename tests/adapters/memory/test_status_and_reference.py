"""The memory adapter follows the neutral rules of issue 15: status on create, registrations found by reference."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import accounting_bridge as ab

DAY = dt.date(2026, 11, 20)


def invoice(number: str = "R-1", status: ab.InvoiceStatus | None = None) -> ab.Invoice:
    line = ab.InvoiceLine(description="Beratung", quantity=Decimal(2), unit_price=Decimal("150.00"))
    return ab.Invoice(number=number, customer_number="K-1", issue_date=DAY, lines=[line], status=status)


async def numbers(ledger: ab.Ledger, status: ab.InvoiceStatus) -> list[str]:
    return [i.number async for i in ledger.invoices.list(status=status)]


async def test_create_issues_open_unless_a_draft_is_asked_for() -> None:
    async with ab.connect("memory") as ledger:
        await ledger.customers.upsert(ab.Customer(number="K-1", name="Muster AG"))
        assert (await ledger.invoices.create(invoice("R-1"))).status is ab.InvoiceStatus.OPEN
        assert (await ledger.invoices.create(invoice("R-2", ab.InvoiceStatus.OPEN))).status is ab.InvoiceStatus.OPEN
        assert (await ledger.invoices.create(invoice("R-3", ab.InvoiceStatus.DRAFT))).status is ab.InvoiceStatus.DRAFT
        assert await numbers(ledger, ab.InvoiceStatus.OPEN) == ["R-1", "R-2"]
        assert await numbers(ledger, ab.InvoiceStatus.DRAFT) == ["R-3"]
        # a resend of the same content is the same invoice, whether it said None or OPEN
        assert (await ledger.invoices.create(invoice("R-1", ab.InvoiceStatus.OPEN))).id == (await ledger.invoices.get("R-1")).id
        with pytest.raises(ab.Conflict):  # a draft is not the open invoice R-1
            await ledger.invoices.create(invoice("R-1", ab.InvoiceStatus.DRAFT))


@pytest.mark.parametrize("status", [ab.InvoiceStatus.PAID, ab.InvoiceStatus.OVERDUE, ab.InvoiceStatus.CANCELLED])
async def test_other_statuses_are_refused_naming_status(status: ab.InvoiceStatus) -> None:
    async with ab.connect("memory") as ledger:
        await ledger.customers.upsert(ab.Customer(number="K-1", name="Muster AG"))
        with pytest.raises(ab.ValidationError) as info:
            await ledger.invoices.create(invoice(status=status))
        assert info.value.fields == ("status",) and "DRAFT" in str(info.value)
        assert [i async for i in ledger.invoices.list()] == []


async def test_registration_found_by_reference_and_resend_returns_it() -> None:
    lines = [ab.PostingLine(account="5000", amount=Decimal("10.00")), ab.PostingLine(account="1090", amount=Decimal("-10.00"))]
    registration = ab.Registration(date=DAY, description="Lohn", lines=lines, reference="payroll-2026-11")
    async with ab.connect("memory") as ledger:
        assert await ledger.registrations.find("payroll-2026-11") is None
        first = await ledger.registrations.submit(registration)
        assert await ledger.registrations.find("payroll-2026-11") == first
        assert await ledger.registrations.submit(registration) == first
        with pytest.raises(ab.ValidationError):
            await ledger.registrations.find("")


async def test_amounts_come_back_in_the_currency_scale_like_the_real_backends() -> None:
    async with ab.connect("memory") as ledger:
        await ledger.customers.upsert(ab.Customer(number="K-1", name="Muster AG"))
        await ledger.invoices.create(invoice("R-1"))
        assert str((await ledger.invoices.get("R-1")).paid_amount) == "0.00"
        paid = await ledger.payments.create(ab.Payment(invoice_number="R-1", date=DAY, amount=Decimal(100)))
        assert str(paid.amount) == "100.00"
        assert [str(p.amount) async for p in ledger.payments.list()] == ["100.00"]
        assert str((await ledger.invoices.get("R-1")).paid_amount) == "100.00"
        sent = [ab.BankTransaction(account="1020", date=DAY, amount=Decimal("-5")),
                ab.BankTransaction(account="1020", date=DAY, amount=Decimal("0.125"))]  # fmt: skip
        await ledger.bank_transactions.submit(sent)
        listed = [str(t.amount) async for t in ledger.bank_transactions.list()]
        assert listed == ["-5.00", "0.125"]  # finer than a cent: kept, never rounded away
