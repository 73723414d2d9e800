"""The memory adapter: every capability, the same duplicate and validation rules as the real backends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from accounting_bridge.adapters.memory import MemoryStore

import accounting_bridge as ab
from accounting_bridge.demo import round_trip

TODAY = dt.date(2026, 11, 20)


def invoice(number: str = "R-1", **kw: object) -> ab.Invoice:
    values: dict[str, object] = {
        "number": number,
        "customer_number": "K-1",
        "issue_date": TODAY,
        "due_date": TODAY + dt.timedelta(days=30),
        "lines": [
            ab.InvoiceLine(description="Beratung", quantity=Decimal("2"), unit_price=Decimal("100.00"), tax_rate=Decimal("8.1")),
            ab.InvoiceLine(description="Spesen", unit_price=Decimal("19.95")),
        ],
    }
    values.update(kw)
    return ab.Invoice(**values)  # type: ignore[arg-type]


@pytest.fixture
async def ledger():
    async with ab.connect("memory", today=lambda: TODAY) as ledger:
        await ledger.customers.upsert(ab.Customer(number="K-1", name="Muster AG"))
        yield ledger


async def test_every_capability_is_declared(ledger: ab.Ledger) -> None:
    assert ledger.capabilities == frozenset(ab.Capability)
    assert ledger.backend == "memory"


async def test_invoice_totals_status_and_payments(ledger: ab.Ledger) -> None:
    created = await ledger.invoices.create(invoice())
    assert (created.net_total, created.tax_total, created.total) == (Decimal("219.95"), Decimal("16.20"), Decimal("236.15"))
    assert created.status is ab.InvoiceStatus.OPEN and created.id is not None
    await ledger.payments.create(ab.Payment(invoice_number="R-1", date=TODAY, amount=Decimal("36.15"), account="1090"))
    assert (await ledger.invoices.get("R-1")).status is ab.InvoiceStatus.PARTIALLY_PAID
    await ledger.payments.create(ab.Payment(invoice_number="R-1", date=TODAY, amount=Decimal("200.00"), account="1090"))
    paid = await ledger.invoices.get("R-1")
    assert paid.status is ab.InvoiceStatus.PAID and paid.paid_amount == Decimal("236.15")
    payments = [p async for p in ledger.payments.list(invoice_number="R-1")]
    assert [p.amount for p in payments] == [Decimal("36.15"), Decimal("200.00")]
    assert [i.number async for i in ledger.invoices.list(status=ab.InvoiceStatus.PAID)] == ["R-1"]
    assert [i.number async for i in ledger.invoices.list(status=ab.InvoiceStatus.OPEN)] == []


async def test_overdue_is_computed_from_the_due_date(ledger: ab.Ledger) -> None:
    await ledger.invoices.create(invoice("R-2", issue_date=TODAY - dt.timedelta(days=60), due_date=TODAY - dt.timedelta(days=30)))
    assert (await ledger.invoices.get("R-2")).status is ab.InvoiceStatus.OVERDUE


async def test_resending_an_invoice_is_not_a_duplicate_but_different_content_conflicts(ledger: ab.Ledger) -> None:
    first = await ledger.invoices.create(invoice())
    again = await ledger.invoices.create(invoice())
    assert again.id == first.id
    assert len([i async for i in ledger.invoices.list()]) == 1
    with pytest.raises(ab.Conflict):
        await ledger.invoices.create(invoice(notes="changed"))


async def test_invoice_for_unknown_customer_or_payment_for_unknown_invoice_is_refused(ledger: ab.Ledger) -> None:
    with pytest.raises(ab.ValidationError) as info:
        await ledger.invoices.create(invoice(customer_number="K-404"))
    assert info.value.fields == ("customer_number",)
    with pytest.raises(ab.ValidationError):
        await ledger.payments.create(ab.Payment(invoice_number="R-404", date=TODAY, amount=Decimal("1.00")))
    assert [i async for i in ledger.invoices.list()] == []


async def test_embedded_customer_is_upserted(ledger: ab.Ledger) -> None:
    await ledger.invoices.create(invoice("R-3", customer_number=None, customer=ab.Customer(number="K-2", name="Neu GmbH")))
    assert (await ledger.customers.get("K-2")).name == "Neu GmbH"


async def test_registration_reference_makes_a_resend_harmless(ledger: ab.Ledger) -> None:
    registration = ab.Registration(
        date=TODAY,
        description="Payroll",
        reference="payroll-2026-11",
        lines=[ab.PostingLine(account="5000", amount=Decimal("10.00")), ab.PostingLine(account="1090", amount=Decimal("-10.00"))],
        attachments=[ab.Document(filename="slip.pdf", content=b"%PDF")],
    )
    first = await ledger.registrations.submit(registration)
    second = await ledger.registrations.submit(registration)
    assert first == second
    response = await ledger.raw("GET", "/registrations")
    assert len(response.json()["items"]) == 1


async def test_too_many_attachments_are_refused_before_anything_is_stored(ledger: ab.Ledger) -> None:
    docs = [ab.Document(filename=f"{i}.pdf", content=b"%PDF") for i in range(4)]
    registration = ab.Registration(
        date=TODAY,
        description="Payroll",
        lines=[ab.PostingLine(account="5000", amount=Decimal("1")), ab.PostingLine(account="1090", amount=Decimal("-1"))],
        attachments=docs,
    )
    with pytest.raises(ab.ValidationError) as info:
        await ledger.registrations.submit(registration)
    assert info.value.fields == ("attachments",)
    assert [d async for d in ledger.documents.list()] == []


async def test_documents_bank_transactions_companies_and_pdf(ledger: ab.Ledger) -> None:
    ref = await ledger.documents.upload(ab.Document(filename="beleg.pdf", content=b"%PDF-1.4", content_type="application/pdf"))
    assert (await ledger.documents.get(ref.id)).content == b"%PDF-1.4"
    await ledger.documents.delete(ref.id)
    with pytest.raises(ab.NotFound):
        await ledger.documents.get(ref.id)
    txs = [
        ab.BankTransaction(account="1020", date=TODAY, amount=Decimal("-12.50"), text="Fee"),
        ab.BankTransaction(account="1020", date=TODAY - dt.timedelta(days=40), amount=Decimal("500.00")),
    ]
    await ledger.bank_transactions.submit(txs)
    recent = [t async for t in ledger.bank_transactions.list(account="1020", since=TODAY - dt.timedelta(days=30))]
    assert [t.amount for t in recent] == [Decimal("-12.50")]
    assert [c.name for c in await ledger.companies()] == ["Memory AG"]
    await ledger.invoices.create(invoice())
    assert (await ledger.invoices.pdf("R-1")).startswith(b"%PDF")


async def test_shared_store_and_text_limits() -> None:
    store = MemoryStore()
    async with ab.connect("memory", store=store, max_text_length=10) as first:
        await first.customers.upsert(ab.Customer(number="K-1", name="Short"))
        with pytest.raises(ab.ValidationError) as info:
            await first.customers.upsert(ab.Customer(number="K-2", name="A very long company name"))
        assert info.value.fields == ("name",)
    async with ab.connect("memory", store=store) as second:
        assert [c.number async for c in second.customers.list()] == ["K-1"]


async def test_demo_round_trip_runs_against_memory() -> None:
    async with ab.connect("memory") as ledger:
        steps = await round_trip(ledger)
    assert [(s.operation, s.outcome) for s in steps] == [
        (name, "ok") for name in ("customer", "invoice", "payment", "document", "registration", "bank transactions")
    ]


def test_cli_demo_on_memory(capsys: pytest.CaptureFixture[str]) -> None:
    from accounting_bridge.cli import main

    assert main(["demo", "--backend", "memory"]) == 0
    assert "memory" in capsys.readouterr().out
