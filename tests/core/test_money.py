"""The currency's scale (issue 15 item 4): one core rule, `accounting_bridge.money`, used by every decoder."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from accounting_bridge.adapters.multiregnskab import wire as mr_wire
from accounting_bridge.adapters.runmyaccounts import wire as rma_wire
from accounting_bridge.adapters.smallinvoice import wire as si_wire

import accounting_bridge as ab
from accounting_bridge.money import at_scale, at_scale_or_none, scale_of


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1250", "DKK", "1250.00"),
        ("300.0", "CHF", "300.00"),
        ("300.000", "EUR", "300.00"),  # trailing zeros are no precision
        ("-80.5", None, "-80.50"),  # no currency: two decimals
        ("12", "XYZ", "12.00"),  # unknown currency: two decimals
        ("12", "chf", "12.00"),
        ("-0", "CHF", "0.00"),  # no "-0.00"
        ("0.125", "CHF", "0.125"),  # finer than the scale: kept exactly, never rounded
        ("0.0375", "EUR", "0.0375"),
        ("1500.00", "JPY", "1500"),  # ISO 4217 minor units
        ("1500.50", "JPY", "1500.50"),
        ("7.5", "KWD", "7.500"),
    ],
)
def test_at_scale(amount: str, currency: str | None, expected: str) -> None:
    assert str(at_scale(Decimal(amount), currency)) == expected


def test_at_scale_leaves_what_cannot_be_padded() -> None:
    assert at_scale(Decimal("NaN")).is_nan()
    huge = Decimal("1" * 28)  # padding would exceed the context's precision
    assert at_scale(huge) is huge
    assert at_scale_or_none(None, "CHF") is None
    assert (scale_of(None), scale_of("DKK"), scale_of("jpy"), scale_of("BHD")) == (2, 2, 0, 3)


def test_smallinvoice_floats_come_back_at_the_currency_scale() -> None:
    # smallinvoice writes money as JSON floats (`100.0`, `324.3`), read as Decimal by the codec
    item = {"id": 7, "number": "R-1", "date": "2026-11-20", "currency": "CHF", "contact_id": 3,
            "total": Decimal("324.3"), "total_paid": Decimal("100.0"),
            "positions": [{"type": "N", "price": Decimal("0.0375"), "amount": Decimal(8000), "vat": Decimal("8.1")},
                          {"type": "N", "price": Decimal(150), "amount": Decimal("1.0"), "vat": Decimal(0)}]}  # fmt: skip
    invoice = si_wire.decode_invoice(item)
    assert (str(invoice.total), str(invoice.paid_amount)) == ("324.30", "100.00")
    assert [str(line.unit_price) for line in invoice.lines] == ["0.0375", "150.00"]  # a price keeps finer digits
    assert (invoice.net_total, invoice.tax_total) == (None, None)  # smallinvoice answers with the gross total only
    payment = si_wire.decode_payment({"type": "N", "amount": Decimal(100), "date": "2026-11-20"}, invoice_number="R-1")
    assert str(payment.amount) == "100.00"


def test_run_my_accounts_entries_come_back_at_the_currency_scale() -> None:
    tree = {"invnumber": "R-1", "transdate": "2026-11-20", "customernumber": "K-1", "currency": "CHF",
            "amount": "324.3", "netamount": "300.0", "paid": "0",
            "incomeentries": {"incomeentry": [{"amount": "300.0", "income_accno": "3400"}]},
            "taxentries": {"taxentry": [{"amount": "24.3", "tax_accno": "2201"}]}}  # fmt: skip
    invoice = rma_wire.decode_invoice(tree, today=dt.date(2026, 11, 20))
    assert [str(line.unit_price) for line in invoice.lines] == ["300.00"]
    assert [str(t.amount) for t in invoice.tax_lines] == ["24.30"]
    amounts = (invoice.total, invoice.net_total, invoice.tax_total, invoice.paid_amount)
    assert [str(a) for a in amounts] == ["324.30", "300.00", "24.30", "0.00"]


@pytest.mark.parametrize(("wire", "expected"), [("1250", "1250.00"), (1250, "1250.00"), ("-8.750,5", "-8750.50"),
                                                ("0,125", "0.125")])  # fmt: skip
def test_multiregnskab_bank_amounts_come_back_at_the_currency_scale(wire: object, expected: str) -> None:
    posting = {"xid": 1, "bankDate": "2026-11-20", "bankAmount": wire}
    assert str(mr_wire.decode_bank_posting(posting, account="17", currency="DKK").amount) == expected


async def test_memory_follows_the_invoice_currency() -> None:
    async with ab.connect("memory") as ledger:
        await ledger.customers.upsert(ab.Customer(number="K-1", name="Yamada KK"))
        lines = [ab.InvoiceLine(description="Beratung", quantity=Decimal(2), unit_price=Decimal("1500.4"))]
        made = await ledger.invoices.create(
            ab.Invoice(
                number="R-1", customer_number="K-1", issue_date=dt.date(2026, 11, 20), currency="JPY", lines=lines
            )
        )
        assert (str(made.total), str(made.lines[0].unit_price)) == ("3001", "1500.4")  # yen: no decimals
        paid = await ledger.payments.create(
            ab.Payment(invoice_number="R-1", date=made.issue_date, amount=Decimal("1000.00"))
        )
        assert (str(paid.amount), str((await ledger.invoices.get("R-1")).paid_amount)) == ("1000", "1000")
