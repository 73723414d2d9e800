"""Deterministic push workloads shared by the in-process tests and the subprocess pusher."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

import accounting_bridge as ab

DAY = _dt.date(2024, 5, 2)


def customer(index: int) -> ab.Customer:
    return ab.Customer(number=f"K-{index:04d}", name=f"Kunde {index} AG")


def invoice(index: int, customer_number: str) -> ab.Invoice:
    amount = Decimal(100 + index % 900) + Decimal("0.50")
    return ab.Invoice(
        number=f"R-{index:05d}",
        customer_number=customer_number,
        issue_date=DAY,
        due_date=DAY + _dt.timedelta(days=30),
        lines=[ab.InvoiceLine(description=f"Leistung {index}", unit_price=amount, account="3400")],
    )


def invoices_with_customers(invoices: int, customers: int) -> list[Any]:
    """Invoices first and customers last in the list: push must still send the customers first."""
    people = [customer(i) for i in range(customers)]
    bills = [invoice(i, people[i % customers].number) for i in range(invoices)]
    return [*bills, *people]


def registration(index: int) -> ab.Registration:
    amount = Decimal(1000 + index) + Decimal("0.25")
    return ab.Registration(
        date=DAY,
        description=f"Lønkørsel {index}",
        reference=f"payroll-{index:04d}",
        lines=[ab.PostingLine(account="2200", amount=amount), ab.PostingLine(account="5820", amount=-amount)],
        attachments=[ab.Document(filename=f"payslips-{index}.pdf", content=b"%PDF-1.4 payslips",
                                 content_type="application/pdf")],
    )  # fmt: skip


def registrations(count: int) -> list[ab.Registration]:
    return [registration(i) for i in range(count)]
