"""The neutral round trip run by `accounting-bridge demo`: one piece of code for every backend."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from decimal import Decimal

from .ledger import Capability, Ledger
from .models import Customer, Document, Invoice, InvoiceLine, Payment, PostingLine, Registration

__all__ = ["round_trip"]


async def round_trip(ledger: Ledger, say: Callable[[str], None] = print, *, suffix: str = "001") -> None:
    """Customer → invoice → payment → registration with a payslip, skipping what the backend lacks."""
    today = _dt.date(2026, 11, 20)
    say(f"backend {ledger.backend}: {len(ledger.capabilities)} capabilities")
    customer = await ledger.customers.upsert(Customer(number=f"K-{suffix}", name="Muster AG", email="ap@muster.ch"))
    say(f"customer {customer.number} {customer.name} (id {customer.id})")
    invoice = await ledger.invoices.create(
        Invoice(
            number=f"R-{suffix}",
            customer_number=customer.number,
            issue_date=today,
            due_date=today + _dt.timedelta(days=30),
            currency="CHF",
            lines=[
                InvoiceLine(description="Consulting", quantity=Decimal("3.5"), unit_price=Decimal("140.00"),
                            tax_rate=Decimal("8.1")),
                InvoiceLine(description="Travel", unit_price=Decimal("45.35")),
            ],
        )
    )
    say(f"invoice {invoice.number}: total {invoice.total} {invoice.currency}, status {_status(invoice)}")
    if ledger.supports(Capability.PAYMENTS_CREATE):
        await ledger.payments.create(
            Payment(invoice_number=invoice.number, date=today, amount=Decimal("200.00"), account="1090")
        )
        invoice = await ledger.invoices.get(invoice.number)
        say(f"after a payment of 200.00: paid {invoice.paid_amount}, status {_status(invoice)}")
    if ledger.supports(Capability.REGISTRATIONS_SUBMIT):
        ref = await ledger.registrations.submit(
            Registration(
                date=today,
                description="Payroll 2026-11",
                reference=f"payroll-2026-11-{suffix}",
                lines=[
                    PostingLine(account="5000", amount=Decimal("8000.00"), text="Gross wages"),
                    PostingLine(account="1090", amount=Decimal("-8000.00"), text="Net pay and withholdings"),
                ],
                attachments=[
                    Document(filename="payslip.pdf", content=b"%PDF-1.4 demo", content_type="application/pdf")
                ],
            )
        )
        say(f"registration submitted: id {ref.id}, reference {ref.reference}")
    count = 0
    async for _ in ledger.invoices.list(customer_number=customer.number):
        count += 1
    say(f"{count} invoice(s) listed for {customer.number}")


def _status(invoice: Invoice) -> str:
    return invoice.status.value if invoice.status else "-"
