"""Use cases A1-A8, B1-B2, C1-C3, D1-D5, E1-E2 of seed 001, run against the sandbox over real sockets."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal as D
from typing import Any

import pytest
from accounting_bridge.adapters.runmyaccounts import recipes
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge import InvoiceLine, InvoiceStatus, PaymentKind, TaxLine

DAY = _dt.date(2024, 5, 2)
DUE = _dt.date(2024, 6, 1)


def booked(number: str, lines: list[InvoiceLine], taxes: list[TaxLine], customer: str = "K-001") -> ab.Invoice:
    return ab.Invoice(
        number=number, customer_number=customer, issue_date=DAY, due_date=DUE, lines=lines, tax_lines=taxes
    )


def parts(number: str, lines: list[InvoiceLine], customer: str = "K-001") -> ab.Invoice:
    return ab.Invoice(number=number, customer_number=customer, issue_date=DAY, due_date=DUE, lines=lines)


async def balance(ledger: ab.Ledger, accno: str) -> D:
    rows = await ledger.adapter.saldo(accno=accno)  # type: ignore[attr-defined]
    return sum((r.amount for r in rows), D(0))


# --- A: invoices ---------------------------------------------------------------------------------------------


async def test_a1_book_invoice(ledger: ab.Ledger) -> None:
    invoice = booked(
        "R-001",
        [InvoiceLine(description="Beratung", unit_price=D("99.00"), account="3400")],
        [recipes.vat_line(D("99.00"), D("8"), "2201")],
    )
    created = await ledger.invoices.create(invoice)
    assert created.tax_lines[0].amount == D("7.92")
    assert created.total == D("106.92") and created.status is InvoiceStatus.OPEN
    assert await balance(ledger, "3400") == D("99.00")
    assert await balance(ledger, "1100") == D("106.92")


async def test_a2_discount_without_parts(ledger: ab.Ledger) -> None:
    lines = [
        recipes.discount_line(D("100.00"), account="3400"),
        InvoiceLine(description="Leistung A", unit_price=D("400.00"), account="3400"),
        InvoiceLine(description="Leistung B", unit_price=D("600.00"), account="3400"),
    ]
    created = await ledger.invoices.create(booked("R-A2", lines, [recipes.vat_line(D("900"), D("8"), "2201")]))
    assert created.net_total == D("900.00") and created.total == D("972.00")
    assert created.lines[0].unit_price == D("-100.0")


async def test_a3_a4_akonto_and_final_invoice(ledger: ab.Ledger) -> None:
    a3 = recipes.akonto_invoice("R-A3", "K-001", DAY, DUE, D("600.00"), vat_rate=D("8"), tax_account="2201")
    created = await ledger.invoices.create(a3)
    assert created.total == D("648.00")
    assert await balance(ledger, "2030") == D("600.00")  # a liability until the final invoice
    final = recipes.akonto_final_invoice(
        "R-A4", "K-001", DAY, DUE,
        [InvoiceLine(description="Projekt", unit_price=D("1200.00"), account="3600")],
        D("600.00"), vat_rate=D("8"), tax_account="2201",
    )  # fmt: skip
    created = await ledger.invoices.create(final)
    assert created.tax_lines[0].amount == D("48.00")  # VAT only on the remaining 600
    assert created.total == D("648.00")
    assert await balance(ledger, "2030") == D("0")
    assert await balance(ledger, "3600") == D("1200.00")


async def test_a5_invoice_with_parts(ledger: ab.Ledger) -> None:
    lines = [
        InvoiceLine(description="Lizenz", item_number="SW-LIC", quantity=D(2), unit_price=D("480.00"),
                    discount_percent=D(10)),
        InvoiceLine(description="Support", item_number="SUPPORT-H", quantity=D("3.5"), unit_price=D("140.00")),
    ]  # fmt: skip
    created = await ledger.invoices.create(parts("R-A5", lines))
    assert created.net_total == D("1354.00")
    assert created.total == D("1463.67")  # 8.1 % VAT from the part master
    assert [line.item_number for line in created.lines] == ["SW-LIC", "SUPPORT-H"]
    assert created.lines[0].account == "3400"  # income account filled in from the part


async def test_a6_discount_with_parts(ledger: ab.Ledger) -> None:
    lines = [
        InvoiceLine(description="Beratung", item_number="BERATUNG", quantity=D(4), unit_price=D("150.00")),
        recipes.discount_line(D("100.00"), part="RABATT"),
    ]
    created = await ledger.invoices.create(parts("R-A6", lines))
    assert created.net_total == D("500.00") and created.total == D("540.50")


async def test_a7_a8_akonto_with_parts(ledger: ab.Ledger) -> None:
    akonto = [InvoiceLine(description="Akonto", item_number="AKONTO", unit_price=D("1000.00"))]
    assert (await ledger.invoices.create(parts("R-A7", akonto))).total == D("1081.00")
    assert await balance(ledger, "2030") == D("1000.00")
    final = [
        InvoiceLine(description="Beratung", item_number="BERATUNG", quantity=D(10), unit_price=D("150.00")),
        InvoiceLine(description="Abzug Akonto", item_number="AKONTO", quantity=D(-1), unit_price=D("1000.00")),
    ]
    created = await ledger.invoices.create(parts("R-A8", final))
    assert created.net_total == D("500.00")
    assert await balance(ledger, "2030") == D("0")


# --- B: credit notes -----------------------------------------------------------------------------------------


async def test_b1_credit_note_booked(ledger: ab.Ledger) -> None:
    note = recipes.credit_note(
        "GS-B1", "K-001", DAY,
        [InvoiceLine(description="Ruecknahme", unit_price=D("310.00"), account="3200")],
        tax_lines=[TaxLine(account="2201", amount=D("25.11"))], reference="R-1",
    )  # fmt: skip
    created = await ledger.invoices.create(note)
    assert created.kind is ab.InvoiceKind.CREDIT_NOTE
    assert created.total == D("-335.11")


async def test_b2_credit_note_with_parts(ledger: ab.Ledger) -> None:
    note = recipes.credit_note(
        "GS-B2", "K-001", DAY,
        [InvoiceLine(description="Lizenz retour", item_number="SW-LIC", unit_price=D("480.00"), discount_percent=D(10))],
    )  # fmt: skip
    created = await ledger.invoices.create(note)
    assert created.lines[0].quantity == D("-1.0")
    assert created.total == D("-466.99")  # -432.00 - 8.1 % VAT (34.992 -> 34.99)


# --- C: deletion and storno ----------------------------------------------------------------------------------


async def test_c1_delete_is_refused_with_explanation(ledger: ab.Ledger) -> None:
    with pytest.raises(ab.UnsupportedOperation) as info:
        await ledger.adapter.delete_invoice("R-001")  # type: ignore[attr-defined]
    assert "storno" in str(info.value).lower() and "credit note" in str(info.value)
    assert not hasattr(ledger.invoices, "delete")


async def test_c2_storno_booked_lines(ledger: ab.Ledger) -> None:
    original = booked("R-C2", [InvoiceLine(description="X", unit_price=D("200.00"), account="3400")],
                      [TaxLine(account="2201", amount=D("16.20"))])  # fmt: skip
    await ledger.invoices.create(original)
    first, storno = await recipes.book_storno(ledger, "R-C2", account="1090")
    assert storno.number == "R-C2-STORNO" and storno.issue_date == first.issue_date
    assert storno.total == -first.total  # type: ignore[operator]
    assert first.status is InvoiceStatus.PAID and storno.status is InvoiceStatus.PAID
    assert await balance(ledger, "1090") == D("0")  # transfer account nets to zero
    assert await balance(ledger, "3400") == D("0")


async def test_c3_storno_with_parts(ledger: ab.Ledger) -> None:
    lines = [InvoiceLine(description="Beratung", item_number="BERATUNG", quantity=D(6), unit_price=D("162.15"))]
    await ledger.invoices.create(parts("R-C3", lines))
    original = await ledger.invoices.get("R-C3")
    storno = recipes.storno_of(original)
    assert storno.lines[0].quantity == D("-6.0")
    first, counter = await recipes.book_storno(ledger, "R-C3", account="1090", suffix="-S")
    assert counter.total == -first.total  # type: ignore[operator]
    assert await balance(ledger, "1100") == D("0")


# --- D: payments ---------------------------------------------------------------------------------------------


async def _invoice_648(ledger: ab.Ledger, number: str) -> None:
    await ledger.invoices.create(
        booked(number, [InvoiceLine(description="X", unit_price=D("600.00"), account="3400")],
               [TaxLine(account="2201", amount=D("48.00"))])
    )  # fmt: skip


async def test_d1_partial_payment(ledger: ab.Ledger) -> None:
    await _invoice_648(ledger, "R-D1")
    await ledger.payments.create(ab.Payment(invoice_number="R-D1", date=DAY, amount=D("300.00")))
    invoice = await ledger.invoices.get("R-D1")
    assert invoice.status is InvoiceStatus.PARTIALLY_PAID and invoice.paid_amount == D("300.00")
    await ledger.payments.create(ab.Payment(invoice_number="R-D1", date=DAY, amount=D("348.00")))
    assert (await ledger.invoices.get("R-D1")).status is InvoiceStatus.PAID


@pytest.mark.parametrize(
    ("kind", "received", "deduction", "account"),
    [
        (PaymentKind.DISCOUNT, "448.00", "200.00", "3801"),  # D2 Rabatt / Preisnachlass
        (PaymentKind.BANK_FEE, "644.00", "4.00", "6940"),  # D3 Bank-/PC-Spesen
        (PaymentKind.CASH_DISCOUNT, "635.05", "12.95", "3800"),  # D4 Skonto
    ],
)
async def test_d2_d3_d4_deductions_as_extra_payment_lines(
    ledger: ab.Ledger, kind: PaymentKind, received: str, deduction: str, account: str
) -> None:
    await _invoice_648(ledger, "R-D")
    made = [await ledger.payments.create(p) for p in recipes.settlement("R-D", DAY, D(received), {kind: D(deduction)})]
    assert [(p.account, p.kind) for p in made] == [("1090", PaymentKind.PAYMENT), (account, kind)]
    assert (await ledger.invoices.get("R-D")).status is InvoiceStatus.PAID
    listed = [p async for p in ledger.payments.list(invoice_number="R-D")]
    assert sum((p.amount for p in listed), D(0)) == D("648.00")


async def test_d_configured_accounts_from_seed_table(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox, cash_discount_account="3900", discount_account="3901", bank_fees_account="6840") as led:
        await _invoice_648(led, "R-S")
        payments = recipes.settlement("R-S", DAY, D("631.05"), {PaymentKind.CASH_DISCOUNT: D("12.95"),
                                                               PaymentKind.BANK_FEE: D("4.00")})  # fmt: skip
        made = [await led.payments.create(p) for p in payments]
        assert [p.account for p in made] == ["1090", "3900", "6840"]
        assert made[1].kind is PaymentKind.CASH_DISCOUNT


async def test_d5_offset_invoice_and_credit_note_on_transfer_account(ledger: ab.Ledger) -> None:
    await _invoice_648(ledger, "R-D5")
    note = recipes.credit_note("GS-D5", "K-001", DAY, [InvoiceLine(description="Gutschrift", unit_price=D("600.00"),
                               account="3400")], tax_lines=[TaxLine(account="2201", amount=D("48.00"))])  # fmt: skip
    await ledger.invoices.create(note)
    made = await recipes.offset_with_transfer(ledger, "R-D5", "GS-D5", DAY, account="1090")
    assert [p.amount for p in made] == [D("648.00"), D("-648.00")]
    assert (await ledger.invoices.get("R-D5")).status is InvoiceStatus.PAID
    assert (await ledger.invoices.get("GS-D5")).status is InvoiceStatus.PAID
    assert await balance(ledger, "1090") == D("0")


async def test_payment_to_bank_account_is_refused(ledger: ab.Ledger, sandbox: RmaSandbox) -> None:
    await _invoice_648(ledger, "R-BANK")
    with pytest.raises(ab.ValidationError) as info:
        await ledger.payments.create(ab.Payment(invoice_number="R-BANK", date=DAY, amount=D("648"), account="1020"))
    assert "clearing" in str(info.value) and "1090" in str(info.value)
    assert not sandbox.state.payments


async def test_payment_to_bank_account_when_explicitly_allowed(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox, allow_bank_account_payments=True) as led:
        await _invoice_648(led, "R-BANK2")
        made = await led.payments.create(ab.Payment(invoice_number="R-BANK2", date=DAY, amount=D("648"),
                                                    account="1020"))  # fmt: skip
        assert made.account == "1020"


async def test_bank_accounts_setting_refuses_before_io(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox, bank_accounts=["1030"]) as led:
        before = len(sandbox.requests)
        with pytest.raises(ab.ValidationError):
            await led.payments.create(ab.Payment(invoice_number="R", date=DAY, amount=D("1"), account="1030"))
        assert len(sandbox.requests) == before


# --- E: customers --------------------------------------------------------------------------------------------


async def test_e1_open_customer_directly_and_through_invoice(ledger: ab.Ledger) -> None:
    created = await ledger.customers.upsert(ab.Customer(number="K-NEW", name="Neu AG", email="a@neu.example"))
    assert created.id and created.email == "a@neu.example"
    embedded = ab.Customer(number="K-EMB", name="Eingebettet GmbH", payment_terms_days=20)
    invoice = ab.Invoice(number="R-E1", customer=embedded, issue_date=DAY, due_date=DUE,
                         lines=[InvoiceLine(description="X", unit_price=D("10"), account="3400")])  # fmt: skip
    await ledger.invoices.create(invoice)
    assert (await ledger.customers.get("K-EMB")).payment_terms_days == 20


async def test_e2_mutate_customer_overwrites(ledger: ab.Ledger) -> None:
    await ledger.customers.upsert(ab.Customer(number="K-E2", name="Alt AG", phone="044 000 00 00"))
    changed = await ledger.customers.upsert(ab.Customer(number="K-E2", name="Neu AG"))
    assert changed.name == "Neu AG"
    assert changed.phone is None  # the complete record replaces the stored one
