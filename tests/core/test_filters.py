from __future__ import annotations

import datetime as dt
from decimal import Decimal

import accounting_bridge as ab
from accounting_bridge.filters import in_window, invoice_matches

D = dt.date


def test_in_window_is_inclusive_and_open_ended() -> None:
    assert in_window(D(2026, 1, 1), D(2026, 1, 1), D(2026, 1, 1))
    assert not in_window(D(2025, 12, 31), D(2026, 1, 1), None)
    assert not in_window(D(2026, 2, 1), None, D(2026, 1, 31))
    assert in_window(None, None, None)
    assert not in_window(None, D(2026, 1, 1), None)


def test_invoice_matches_every_filter() -> None:
    invoice = ab.Invoice(
        number="R-1",
        customer_number="K-1",
        issue_date=D(2026, 3, 1),
        lines=[ab.InvoiceLine(description="x", unit_price=Decimal(1))],
        status=ab.InvoiceStatus.OPEN,
    )
    assert invoice_matches(invoice, status=ab.InvoiceStatus.OPEN, since=D(2026, 3, 1), customer_number="K-1")
    assert not invoice_matches(invoice, status=ab.InvoiceStatus.PAID)
    assert not invoice_matches(invoice, customer_number="K-2")
    assert not invoice_matches(invoice, until=D(2026, 2, 28))
