"""Use cases of the Run my Accounts documentation (seed 001) as neutral-model helpers.

Pure builders return neutral models for `ledger.invoices.create` / `ledger.payments.create`; the two async
recipes run several calls. Account numbers come from the caller (normally the adapter settings): they are tenant
configuration.

| use case | helper |
|---|---|
| A1/A5 invoice (booked lines / parts) | plain `Invoice` (lines with `account`, or with `item_number`) + `vat_line` |
| A2/A6 discount on the invoice | `discount_line` (negative line on a sales or discount account / a discount part) |
| A3/A7 Akonto invoice | `akonto_invoice` (or a line with the Akonto part) |
| A4/A8 final Akonto invoice | `akonto_final_invoice` (negative Akonto line, VAT on the remainder only) |
| B1/B2 credit note | `credit_note` (positive amounts, booked negative) |
| C1 delete | refused: `RunMyAccountsAdapter.delete_invoice` explains the alternatives |
| C2/C3 storno | `storno_of` (same date, negated) and `book_storno` (create + offset both via the transfer account) |
| D1 partial payment | a `Payment` with less than the open amount |
| D2-D4 discount, bank fees, Skonto | `settlement` (one money payment + one payment line per deduction kind) |
| D5 transfer account offsetting | `offset_with_transfer` |
| E1/E2 customers | `ledger.customers.upsert` (complete record) or a `customer` embedded in the invoice |
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs

from accounting_bridge.models import Invoice, InvoiceKind, InvoiceLine, Payment, PaymentKind, TaxLine

__all__ = [
    "akonto_final_invoice",
    "akonto_invoice",
    "book_storno",
    "credit_note",
    "discount_line",
    "offset_with_transfer",
    "settlement",
    "storno_of",
    "vat_line",
]

CENT = Decimal("0.01")


def vat_line(net: Decimal, rate_percent: Decimal, account: str) -> TaxLine:
    """The VAT booking of a transaction-shape invoice (RMA does not compute it): net × rate, to the cent."""
    return TaxLine(account=account, amount=(net * rate_percent / 100).quantize(CENT, ROUND_HALF_UP))


def discount_line(
    amount: Decimal, *, account: str | None = None, part: str | None = None, text: str = "Rabatt"
) -> InvoiceLine:
    """A2/A6: a visible discount as a negative line (on a sales/discount account, or a discount part)."""
    return InvoiceLine(description=text, unit_price=-abs(amount), account=account, item_number=part)


def akonto_invoice(
    number: str,
    customer_number: str,
    issue_date: _dt.date,
    due_date: _dt.date,
    net: Decimal,
    *,
    vat_rate: Decimal,
    tax_account: str,
    akonto_account: str = "2030",
    text: str = "Akontozahlung",
) -> Invoice:
    """A3: a down-payment invoice booked to the advance-payments liability (e.g. 2030) with its VAT."""
    return Invoice(
        number=number,
        customer_number=customer_number,
        issue_date=issue_date,
        due_date=due_date,
        title=text,
        lines=[InvoiceLine(description=text, unit_price=net, account=akonto_account)],
        tax_lines=[vat_line(net, vat_rate, tax_account)] if vat_rate else [],
    )


def akonto_final_invoice(
    number: str,
    customer_number: str,
    issue_date: _dt.date,
    due_date: _dt.date,
    lines: Sequence[InvoiceLine],
    akonto_net: Decimal,
    *,
    vat_rate: Decimal,
    tax_account: str,
    akonto_account: str = "2030",
    text: str = "Anzahlung",
) -> Invoice:
    """A4: the full amount on income accounts minus the Akonto on the liability; VAT only on the remainder
    (the Akonto's VAT was already booked with the Akonto invoice). The Akonto balance ends at zero."""
    deduction = InvoiceLine(description=text, unit_price=-abs(akonto_net), account=akonto_account)
    remainder = sum((line.net_amount for line in lines), Decimal(0)) - abs(akonto_net)
    return Invoice(
        number=number,
        customer_number=customer_number,
        issue_date=issue_date,
        due_date=due_date,
        title="Schlussrechnung",
        lines=[deduction, *lines],
        tax_lines=[vat_line(remainder, vat_rate, tax_account)] if vat_rate else [],
    )


def credit_note(
    number: str,
    customer_number: str,
    issue_date: _dt.date,
    lines: Sequence[InvoiceLine],
    *,
    tax_lines: Sequence[TaxLine] = (),
    reference: str | None = None,
) -> Invoice:
    """B1/B2: a credit note stated with positive amounts; the adapter books it negative."""
    return Invoice(
        number=number,
        customer_number=customer_number,
        issue_date=issue_date,
        due_date=issue_date,
        kind=InvoiceKind.CREDIT_NOTE,
        lines=list(lines),
        tax_lines=list(tax_lines),
        internal_notes=f"Bezug: {reference}" if reference else None,
        title=f"Gutschrift zu {reference}" if reference else "Gutschrift",
    )


def storno_of(original: Invoice, *, suffix: str = "-STORNO") -> Invoice:
    """C2/C3: the counter-document of `original` — same date, same lines with negated quantities (parts) or
    amounts (booked lines), negated VAT, a new number. The original stays; both together balance to zero."""
    lines = [
        attrs.evolve(line, quantity=-line.quantity)
        if line.item_number
        else attrs.evolve(line, unit_price=-line.unit_price)
        for line in original.lines
    ]
    return Invoice(
        number=original.number + suffix,
        customer_number=original.customer_key,
        issue_date=original.issue_date,
        due_date=original.issue_date,
        currency=original.currency,
        kind=InvoiceKind.CREDIT_NOTE,
        prices_include_tax=original.prices_include_tax,
        lines=lines,
        tax_lines=[attrs.evolve(t, amount=-t.amount) for t in original.tax_lines],
        title=f"Storno Rechnung {original.number}",
        internal_notes=f"Storno von {original.number}",
    )


def settlement(
    invoice_number: str,
    date: _dt.date,
    received: Decimal,
    deductions: Mapping[PaymentKind, Decimal] | None = None,
    *,
    reference: str | None = None,
    account: str | None = None,
) -> list[Payment]:
    """D1-D4: the money actually received (to the clearing account unless `account`) plus one extra payment
    line per deduction (DISCOUNT, CASH_DISCOUNT, BANK_FEE, ...), each booked to its configured account."""
    payments = [Payment(invoice_number=invoice_number, date=date, amount=received, reference=reference,
                        account=account)]  # fmt: skip
    for kind, amount in (deductions or {}).items():
        payments.append(
            Payment(invoice_number=invoice_number, date=date, amount=amount, kind=kind, reference=reference)
        )
    return payments


async def offset_with_transfer(ledger: Any, first: str, second: str, date: _dt.date, *, account: str) -> list[Payment]:
    """D5: close two documents against each other on the transfer account (one positive, one negative payment
    of the open amounts); the transfer account's balance does not change when they cancel out."""
    booked = []
    for number in (first, second):
        invoice = await ledger.invoices.get(number)
        open_amount = (invoice.total or Decimal(0)) - (invoice.paid_amount or Decimal(0))
        if open_amount:
            payment = Payment(invoice_number=number, date=date, amount=open_amount, account=account, memo="Transfer")
            booked.append(await ledger.payments.create(payment))
    return booked


async def book_storno(ledger: Any, number: str, *, account: str, suffix: str = "-STORNO") -> tuple[Invoice, Invoice]:
    """C2/C3 end to end: create the storno of invoice `number` and book both out over the transfer account.

    Safe to run again after any failure, including a failed read at the end: the storno create is idempotent by
    number and content, and the offset books only what is still open."""
    original = await ledger.invoices.get(number)
    storno = await ledger.invoices.create(storno_of(original, suffix=suffix))
    await offset_with_transfer(ledger, original.number, storno.number, original.issue_date, account=account)
    return await ledger.invoices.get(original.number), await ledger.invoices.get(storno.number)
