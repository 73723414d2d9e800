"""The neutral round trip of `accounting-bridge demo`: one piece of code on every backend, each against its own
sandbox in this process (127.0.0.1, no credentials, no network), skipping what a backend lacks.

    results = await run_demo()          # {"memory": [Step(...), ...], "smallinvoice": [...], ...}
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

import attrs

from .ledger import Capability, Ledger
from .models import (
    Address,
    BankTransaction,
    Customer,
    Document,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PostingLine,
    Registration,
)
from .registry import connect
from .testing import minimal_pdf

__all__ = ["CHARTS", "OPERATIONS", "Chart", "Step", "demo_backends", "round_trip", "run_backend", "run_demo"]

OPERATIONS = ("customer", "invoice", "payment", "document", "registration", "bank transactions")
DAY = _dt.date(2026, 11, 20)
CLEARING, WAGES = "1090", "5000"


@attrs.frozen
class Chart:
    """The accounts that differ between the sandboxes' books."""

    income: str | None = None  # an invoice line's income account: Run my Accounts needs one, smallinvoice has none
    bank: str = "1020"
    payment: str = CLEARING  # where a payment is booked: smallinvoice names a payment channel instead


#: Run my Accounts' sandbox has a common Swiss SME chart; Multi-Regnskab names bank accounts by id (10027 there).
CHARTS = {
    "runmyaccounts": Chart(income="3400"),
    "smallinvoice": Chart(payment="T"),  # T: bank transfer
    "multiregnskab": Chart(income="Salg af ydelser", bank="10027"),  # its income "account" is a product type
    "multiregnskab-s2s": Chart(bank="10027"),
}


@attrs.frozen
class Step:
    """What one operation did on one backend: `outcome` is "ok", "skipped" or "failed"."""

    operation: str
    outcome: str
    seconds: float
    detail: str


@attrs.define
class _Trip:
    ledger: Ledger
    suffix: str
    customer: Customer | None = None
    invoice: Invoice | None = None


class _Skip(Exception):
    """The backend lacks what the operation needs (or an earlier step it builds on did not happen)."""


def demo_backends() -> list[str]:
    """`memory` and every backend that ships a sandbox."""
    from .sandbox import available_sandboxes

    return ["memory", *available_sandboxes()]


async def run_demo(backends: Sequence[str] | None = None) -> dict[str, list[Step]]:
    """The round trip on each backend (all of `demo_backends()` by default), side by side."""
    names = list(backends) if backends is not None else demo_backends()
    results = await asyncio.gather(*(run_backend(name) for name in names))
    return dict(zip(names, results, strict=True))


async def run_backend(backend: str) -> list[Step]:
    """Start `backend`'s sandbox (none for memory), connect, run the round trip, stop."""
    if backend == "memory":
        async with connect("memory") as ledger:
            return await round_trip(ledger)
    from .sandbox import create

    try:
        sandbox = create(backend)
        url = await sandbox.start()
    except Exception as exc:  # one backend's broken sandbox must not hide the others' results
        reason = f"its sandbox did not start: {type(exc).__name__}: {exc}"
        return [Step(operation, "failed", 0.0, reason) for operation in OPERATIONS]
    try:
        async with connect(backend, base_url=url, **sandbox.connect_settings()) as ledger:
            return await round_trip(ledger)
    finally:
        await sandbox.stop()


async def round_trip(ledger: Ledger, *, suffix: str = "001") -> list[Step]:
    """Customer → invoice → payment → document → registration with a payslip → bank transactions."""
    trip = _Trip(ledger, suffix)
    actions: list[tuple[str, Callable[[_Trip], Awaitable[str]]]] = [
        ("customer", _customer),
        ("invoice", _invoice),
        ("payment", _payment),
        ("document", _document),
        ("registration", _registration),
        ("bank transactions", _bank_transactions),
    ]
    return [await _timed(name, action, trip) for name, action in actions]


async def _timed(operation: str, action: Callable[[_Trip], Awaitable[str]], trip: _Trip) -> Step:
    started = time.perf_counter()
    try:
        detail = await action(trip)
        outcome = "ok"
    except _Skip as skip:
        outcome, detail = "skipped", str(skip)
    except Exception as exc:  # shown in the table with the others' results, never hiding them
        outcome, detail = "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return Step(operation, outcome, time.perf_counter() - started, detail)


def _need(trip: _Trip, *capabilities: Capability) -> None:
    missing = [c.value for c in capabilities if not trip.ledger.supports(c)]
    if missing:
        raise _Skip(f"no {', '.join(missing)}")


async def _customer(trip: _Trip) -> str:
    _need(trip, Capability.CUSTOMERS_UPSERT)
    customer = await trip.ledger.customers.upsert(
        Customer(
            number=f"K-{trip.suffix}",
            name="Muster AG",
            email="ap@muster.example",
            address=Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH"),
        )
    )
    trip.customer = customer
    return f"{customer.number} {customer.name}"


async def _invoice(trip: _Trip) -> str:
    if trip.customer is None:
        raise _Skip("needs a customer")
    if trip.ledger.supports(Capability.INVOICES_CREATE):
        status = None
    elif trip.ledger.supports(Capability.INVOICES_CREATE_DRAFT):
        status = InvoiceStatus.DRAFT
    else:
        raise _Skip(f"no {Capability.INVOICES_CREATE.value}")
    income = _chart(trip).income
    trip.invoice = await trip.ledger.invoices.create(
        Invoice(
            number=f"R-{trip.suffix}",
            customer_number=trip.customer.number,
            issue_date=DAY,
            due_date=DAY + _dt.timedelta(days=30),
            currency="CHF",
            status=status,
            lines=[
                InvoiceLine(
                    description="Consulting", quantity=Decimal("3.5"), unit_price=Decimal("140.00"), account=income
                ),
                InvoiceLine(description="Travel", unit_price=Decimal("45.35"), account=income),
            ],
        )
    )
    return f"{trip.invoice.number}: total {trip.invoice.total} {trip.invoice.currency or ''}, {_status(trip.invoice)}"


async def _payment(trip: _Trip) -> str:
    _need(trip, Capability.PAYMENTS_CREATE)
    if trip.invoice is None or trip.invoice.status is InvoiceStatus.DRAFT:
        raise _Skip("needs an open invoice")
    await trip.ledger.payments.create(
        Payment(invoice_number=trip.invoice.number, date=DAY, amount=Decimal("200.00"), account=_chart(trip).payment)
    )
    if not trip.ledger.supports(Capability.INVOICES_GET):
        return "200.00 paid"
    invoice = await trip.ledger.invoices.get(trip.invoice.number)
    return f"200.00 paid: {invoice.paid_amount} paid in all, {_status(invoice)}"


async def _document(trip: _Trip) -> str:
    _need(trip, Capability.DOCUMENTS_UPLOAD)
    ref = await trip.ledger.documents.upload(_payslip(trip, "receipt"))
    return f"{ref.filename} uploaded (id {ref.id})"


async def _registration(trip: _Trip) -> str:
    _need(trip, Capability.REGISTRATIONS_SUBMIT)
    ref = await trip.ledger.registrations.submit(
        Registration(
            date=DAY,
            description="Payroll 2026-11",
            reference=f"payroll-2026-11-{trip.suffix}",
            lines=[
                PostingLine(account=WAGES, amount=Decimal("8000.00")),
                PostingLine(account=CLEARING, amount=Decimal("-8000.00")),
            ],
            attachments=[_payslip(trip, "payslip")],
        )
    )
    return f"reference {ref.reference} with a payslip (id {ref.id})"


async def _bank_transactions(trip: _Trip) -> str:
    can_submit = trip.ledger.supports(Capability.BANK_TRANSACTIONS_SUBMIT)
    can_list = trip.ledger.supports(Capability.BANK_TRANSACTIONS_LIST)
    if not (can_submit or can_list):
        raise _Skip(f"no {Capability.BANK_TRANSACTIONS_LIST.value} or {Capability.BANK_TRANSACTIONS_SUBMIT.value}")
    done = []
    bank = _chart(trip).bank
    if can_submit:
        received = BankTransaction(account=bank, date=DAY, amount=Decimal("495.00"), text=f"Payment R-{trip.suffix}")
        sent = await trip.ledger.bank_transactions.submit([received])
        done.append(f"{len(sent)} submitted")
    if can_list:
        count = 0
        async for _ in trip.ledger.bank_transactions.list(account=bank, since=DAY - _dt.timedelta(days=30), until=DAY):
            count += 1
        done.append(f"{count} listed")
    return ", ".join(done)


def _chart(trip: _Trip) -> Chart:
    return CHARTS.get(trip.ledger.backend, Chart())


def _payslip(trip: _Trip, name: str) -> Document:
    return Document(
        filename=f"{name}-{trip.suffix}.pdf",
        content=minimal_pdf(f"{name} {trip.suffix}"),
        content_type="application/pdf",
        date=DAY,
    )


def _status(invoice: Invoice) -> str:
    return invoice.status.value if invoice.status else "no status"
