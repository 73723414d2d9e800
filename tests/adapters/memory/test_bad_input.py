"""The memory adapter refuses what a real backend would refuse (issue #8.3, #8.6), before anything is stored:
`ValidationError` naming the field. With `portable_keys` (the default) that includes keys a URL-based backend cannot
put into a path, so a test against memory fails where production would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
from accounting_bridge.adapters.memory import MemoryStore

import accounting_bridge as ab
from accounting_bridge.testing import drive

DAY = dt.date(2026, 3, 1)
PDF = b"%PDF-1.4\n%%EOF\n"


def line(**changes: Any) -> ab.InvoiceLine:
    return ab.InvoiceLine(**{"description": "Beratung", "unit_price": D("100.00"), **changes})


def invoice(number: str = "R-1", **changes: Any) -> ab.Invoice:
    values: dict[str, Any] = {"number": number, "customer_number": "K-1", "issue_date": DAY, "lines": [line()]}
    values.update(changes)
    return ab.Invoice(**values)


def payment(invoice_number: str = "R-1", **changes: Any) -> ab.Payment:
    return ab.Payment(**{"invoice_number": invoice_number, "date": DAY, "amount": D("10.00"), **changes})


def registration(**changes: Any) -> ab.Registration:
    lines = [ab.PostingLine(account="6000", amount=D("5")), ab.PostingLine(account="1020", amount=D("-5"))]
    return ab.Registration(**{"date": DAY, "description": "Miete", "lines": lines, **changes})


def document(**changes: Any) -> ab.Document:
    return ab.Document(**{"filename": "a.pdf", "content": PDF, "content_type": "application/pdf", **changes})


Call = Callable[[ab.Ledger], Any]

CASES: list[tuple[str, Call, str]] = [
    # keys (portable: one URL path segment)
    ("get-dot", lambda led: led.invoices.get("."), "number"),
    ("get-dotdot", lambda led: led.invoices.get(".."), "number"),
    ("get-slash", lambda led: led.invoices.get("R/1"), "number"),
    ("get-query", lambda led: led.invoices.get("R?1"), "number"),
    ("get-fragment", lambda led: led.invoices.get("R#1"), "number"),
    ("get-percent", lambda led: led.invoices.get("R%1"), "number"),
    ("get-int", lambda led: led.invoices.get(1), "number"),
    ("get-empty", lambda led: led.invoices.get(""), "number"),
    ("pdf-dotdot", lambda led: led.invoices.pdf(".."), "number"),
    ("customer-dot", lambda led: led.customers.get("."), "number"),
    ("document-dotdot", lambda led: led.documents.get(".."), "document_id"),
    ("delete-slash", lambda led: led.documents.delete("1/2"), "document_id"),
    ("payments-list-dotdot", lambda led: led.payments.list(invoice_number=".."), "invoice_number"),
    ("create-dotdot", lambda led: led.invoices.create(invoice("..")), "number"),
    ("payment-slash", lambda led: led.payments.create(payment("R/1")), "invoice_number"),
    ("upsert-percent", lambda led: led.customers.upsert(ab.Customer(number="K%1", name="X")), "number"),
    # control characters, CR/LF, NUL, lone surrogates
    ("get-crlf", lambda led: led.invoices.get("R\r\n1"), "number"),
    ("get-surrogate", lambda led: led.invoices.get("R\ud800"), "number"),
    ("line-surrogate", lambda led: led.invoices.create(invoice(lines=[line(description="x\ud800")])), "description"),
    ("line-nul", lambda led: led.invoices.create(invoice(lines=[line(description="\x00")])), "description"),
    ("reference-crlf", lambda led: led.registrations.submit(registration(reference="r\r\n")), "reference"),
    ("filename-lf", lambda led: led.documents.upload(document(filename="a\n.pdf")), "filename"),
    ("bank-text-escape", lambda led: led.bank_transactions.submit(
        [ab.BankTransaction(account="1020", date=DAY, amount=D(1), text="\x1b]0;x\x07")]), "text"),
    # over-long texts (the adapter's max_text_length)
    ("name-256", lambda led: led.customers.upsert(ab.Customer(number="K-1", name="N" * 256)), "name"),
    ("title-256", lambda led: led.invoices.create(invoice(title="T" * 256)), "title"),
    ("line-256", lambda led: led.invoices.create(invoice(lines=[line(description="d" * 256)])), "lines[0]"),
    # money, registrations, types
    ("float-price", lambda led: led.invoices.create(invoice(lines=[line(unit_price=0.1)])), "unit_price"),
    ("nan-amount", lambda led: led.payments.create(payment(amount="NaN")), "amount"),
    ("infinite-amount", lambda led: led.payments.create(payment(amount=D("Infinity"))), "amount"),
    ("zero-quantity", lambda led: led.invoices.create(invoice(lines=[line(quantity=0)])), "lines[0].quantity"),
    ("unbalanced", lambda led: led.registrations.submit(registration(lines=[
        ab.PostingLine(account="6000", amount=D("5")), ab.PostingLine(account="1020", amount=D("-4.99"))])), "lines"),
    ("four-attachments", lambda led: led.registrations.submit(registration(attachments=[document()] * 4)),
     "attachments"),
    ("invoice-not-a-model", lambda led: led.invoices.create({"number": "R-1"}), "invoice"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_and_nothing_is_stored(case: str, call: Call, field: str) -> None:
    store = MemoryStore()
    async with ab.connect("memory", store=store) as ledger:
        with pytest.raises(ab.ValidationError) as info:
            await drive(call(ledger))
    assert field in info.value.fields, info.value
    assert attrs.evolve(store, ids=None) == attrs.evolve(MemoryStore(), ids=None)


async def test_without_portable_keys_path_characters_are_keys_but_control_characters_are_not() -> None:
    async with ab.connect("memory", portable_keys=False) as ledger:
        await ledger.customers.upsert(ab.Customer(number="K-1", name="X"))
        created = await ledger.invoices.create(invoice("RE-2026/001"))
        assert (await ledger.invoices.get("RE-2026/001")) == created
        with pytest.raises(ab.ValidationError) as info:
            await ledger.invoices.get("RE\n1")
        assert info.value.fields == ("number",)
