"""Every neutral capability end to end against the sandbox over real sockets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from accounting_bridge.adapters.smallinvoice import SmallInvoiceAdapter
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab

ADDRESS = ab.Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH")


def customer(number: str, **kwargs: object) -> ab.Customer:
    values: dict[str, object] = {"name": f"Kunde {number}", "address": ADDRESS, "currency": "CHF"}
    values.update(kwargs)
    return ab.Customer(number=number, **values)  # type: ignore[arg-type]


def invoice(number: str, customer_number: str = "K-1", **kwargs: object) -> ab.Invoice:
    values: dict[str, object] = {
        "customer_number": customer_number,
        "issue_date": dt.date(2024, 5, 1),
        "due_date": dt.date(2024, 5, 31),
        "lines": [
            ab.InvoiceLine(
                description="Beratung",
                quantity=Decimal("2.5"),
                unit_price=Decimal("120.10"),
                tax_rate=Decimal("8.1"),
                unit="hour",
            ),
            ab.InvoiceLine(description="Material", unit_price=Decimal("0.05"), tax_rate=Decimal("8.1")),
        ],
    }
    values.update(kwargs)
    return ab.Invoice(number=number, **values)  # type: ignore[arg-type]


def adapter(ledger: ab.Ledger) -> SmallInvoiceAdapter:
    assert isinstance(ledger.adapter, SmallInvoiceAdapter)
    return ledger.adapter


async def test_capability_matrix_and_unsupported_operations(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    assert ledger.backend == "smallinvoice"
    for absent in (
        ab.Capability.DOCUMENTS_UPLOAD,
        ab.Capability.DOCUMENTS_LIST,
        ab.Capability.DOCUMENTS_GET,
        ab.Capability.DOCUMENTS_DELETE,
        ab.Capability.BANK_TRANSACTIONS_LIST,
        ab.Capability.BANK_TRANSACTIONS_SUBMIT,
        ab.Capability.REGISTRATIONS_SUBMIT,
        ab.Capability.COMPANIES_LIST,
    ):
        assert not ledger.supports(absent)
    assert ledger.supports(ab.Capability.INVOICES_PDF)
    with pytest.raises(ab.UnsupportedOperation, match=r"documents\.upload"):
        await ledger.documents.upload(ab.Document(filename="a.pdf", content=b"%PDF"))
    with pytest.raises(ab.UnsupportedOperation, match=r"bank_transactions\.list"):
        ledger.bank_transactions.list()
    with pytest.raises(ab.UnsupportedOperation):
        await ledger.bank_transactions.submit([])
    with pytest.raises(ab.UnsupportedOperation):
        ledger.documents.list()
    # the adapter's own defaults say the same when called directly
    with pytest.raises(ab.UnsupportedOperation):
        await ledger.adapter.get_document("1")
    assert sandbox.request_log == []  # refused before any I/O


async def test_customers_upsert_get_and_list_with_paging(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async with connect(page_size=2) as ledger:
        created = await ledger.customers.upsert(customer("K-1", email="info@muster.ch", payment_terms_days=20))
        assert created.id is not None
        assert created.number == "K-1"
        assert created.address == ADDRESS
        assert created.payment_terms_days == 20
        assert created.raw is not None and created.raw["relation"] == ["CL"]
        # upsert by number: the second call updates the same contact (PUT), no second contact
        updated = await ledger.customers.upsert(customer("K-1", name="Muster AG", email="neu@muster.ch"))
        assert updated.id == created.id
        assert updated.name == "Muster AG"
        assert len(sandbox.contacts) == 1
        assert any(m == "PUT" and p.startswith(f"/v2/contacts/{created.id}") for m, p, _s, _r in sandbox.request_log)
        for n in range(2, 6):
            await ledger.customers.upsert(customer(f"K-{n}"))
        sandbox.request_log.clear()
        numbers = [c.number async for c in ledger.customers.list()]
        assert numbers == ["K-1", "K-2", "K-3", "K-4", "K-5"]
        pages = [p for m, p, _s, _r in sandbox.request_log if m == "GET" and p.startswith("/v2/contacts?")]
        assert len(pages) == 3  # 5 items, limit 2: offsets 0, 2, 4
        assert "offset=4" in pages[-1] and "limit=2" in pages[-1]
        got = await ledger.customers.get("K-1")
        assert got.email == "neu@muster.ch"
        with pytest.raises(ab.NotFound):
            await ledger.customers.get("K-404")


async def test_customer_validation_before_io(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    with pytest.raises(ab.ValidationError) as info:
        await ledger.customers.upsert(ab.Customer(number="K-9", name="X", iban="CH9300762011623852957"))
    assert info.value.fields == ("iban",)
    assert sandbox.request_log == []
    # creating needs an address: refused after the lookup, before the POST
    with pytest.raises(ab.ValidationError) as info:
        await ledger.customers.upsert(ab.Customer(number="K-9", name="X"))
    assert "address" in info.value.fields
    assert not any(m == "POST" and "contacts" in p for m, p, _s, _r in sandbox.request_log)


async def test_invoices_create_get_list_filters_pdf(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    await ledger.customers.upsert(customer("K-1"))
    await ledger.customers.upsert(customer("K-2"))
    created = await ledger.invoices.create(invoice("R-1"))
    assert created.number == "R-1"
    assert created.customer_number == "K-1"
    assert created.status is ab.InvoiceStatus.OPEN  # the status rule: open unless a draft is asked for
    # 2.5 × 120.10 = 300.25 + 8.1 % = 24.32 → 324.57; 0.05 + 0.00 VAT (rounded) → 0.05
    assert created.total == Decimal("324.62")
    assert isinstance(created.total, Decimal)
    stored = sandbox.invoices[int(created.id or 0)]
    assert stored["positions"][0]["price"] == Decimal("120.10")
    assert stored["positions"][0]["unit_id"] == 1  # "hour" resolved through the units list
    assert stored["positions"][1]["unit_id"] == 7  # no unit: the first listed unit
    assert stored["contact_address_id"] == sandbox.contacts[stored["contact_id"]]["main_address_id"]
    assert [line.quantity for line in created.lines] == [Decimal("2.5"), Decimal(1)]

    draft = ab.InvoiceStatus.DRAFT
    await ledger.invoices.create(invoice("R-2", "K-2", issue_date=dt.date(2024, 6, 1), due_date=None, status=draft))
    await ledger.invoices.create(
        invoice("R-3", issue_date=dt.date(2024, 7, 1), due_date=dt.date(2024, 7, 31), status=draft)
    )
    r2 = await ledger.invoices.get("R-2")
    assert r2.due_date == dt.date(2024, 7, 1)  # issue date + 30 days (no due date given)
    assert r2.customer_number == "K-2"

    await adapter(ledger).change_invoice_status("R-3", ab.InvoiceStatus.OPEN, at=dt.datetime(2024, 7, 2, 9, 30))
    assert [i.number async for i in ledger.invoices.list()] == ["R-1", "R-2", "R-3"]
    assert [i.number async for i in ledger.invoices.list(status=ab.InvoiceStatus.OPEN)] == ["R-1", "R-3"]
    assert [i.number async for i in ledger.invoices.list(status=ab.InvoiceStatus.DRAFT)] == ["R-2"]
    assert [i.number async for i in ledger.invoices.list(since=dt.date(2024, 6, 1))] == ["R-2", "R-3"]
    assert [i.number async for i in ledger.invoices.list(until=dt.date(2024, 6, 30))] == ["R-1", "R-2"]
    assert [i.number async for i in ledger.invoices.list(customer_number="K-1")] == ["R-1", "R-3"]
    assert [i.number async for i in ledger.invoices.list(customer_number="K-404")] == []
    status_queries = [p for m, p, _s, _r in sandbox.request_log if "filter=" in p and "status" in p]
    assert status_queries  # the status filter went to the server

    pdf = await ledger.invoices.pdf("R-1")
    assert pdf.startswith(b"%PDF-") and b"R-1" in pdf
    with pytest.raises(ab.NotFound):
        await ledger.invoices.get("R-404")


async def test_create_invoice_is_keyed_by_number(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    await ledger.customers.upsert(customer("K-1"))
    first = await ledger.invoices.create(invoice("R-1"))
    again = await ledger.invoices.create(invoice("R-1"))  # same content: the existing invoice, not a second one
    assert again.id == first.id
    assert len(sandbox.invoices) == 1
    with pytest.raises(ab.Conflict):
        await ledger.invoices.create(invoice("R-1", issue_date=dt.date(2024, 5, 2)))


async def test_invoice_with_embedded_customer_and_validation(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    created = await ledger.invoices.create(invoice("R-7", customer_number=None, customer=customer("K-7")))
    assert created.customer_number == "K-7"
    assert (await ledger.customers.get("K-7")).name == "Kunde K-7"
    sandbox.request_log.clear()
    with pytest.raises(ab.ValidationError) as info:
        await ledger.invoices.create(invoice("R-8", kind=ab.InvoiceKind.CREDIT_NOTE, order_number="PO-1"))
    assert set(info.value.fields) == {"kind", "order_number"}
    assert sandbox.request_log == []
    with pytest.raises(ab.ValidationError, match="does not exist"):
        await ledger.invoices.create(invoice("R-9", "K-404"))
    bad_unit = invoice("R-10", "K-7", lines=[ab.InvoiceLine(description="x", unit_price=Decimal(1), unit="parsec")])
    with pytest.raises(ab.ValidationError) as info:
        await ledger.invoices.create(bad_unit)
    assert info.value.fields == ("lines[0].unit",)
    assert not any(m == "POST" and "invoices" in p for m, p, _s, _r in sandbox.request_log)


async def test_send_by_email_and_change_status(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    await ledger.customers.upsert(customer("K-1"))
    await ledger.invoices.create(invoice("R-1"))
    si = adapter(ledger)
    await si.send_invoice_by_email(
        "R-1", recipients=["info@muster.ch", ("buha@muster.ch", "Buchhaltung")], subject="Rechnung", body="Hallo"
    )
    assert sandbox.sent_emails[0]["recipients"] == [
        {"email": "info@muster.ch", "name": "info@muster.ch"},  # `name` is required (spec): the address itself
        {"email": "buha@muster.ch", "name": "Buchhaltung"},
    ]
    assert ("PATCH", f"/v2/receivables/invoices/{sandbox.sent_emails[0]['invoice_id']}/send-by-email", 204) in [
        entry[:3] for entry in sandbox.request_log
    ]
    assert (await ledger.invoices.get("R-1")).status is ab.InvoiceStatus.OPEN
    reminded = await si.change_invoice_status("R-1", "R1")
    assert reminded.status is ab.InvoiceStatus.OVERDUE
    cancelled = await si.change_invoice_status("R-1", ab.InvoiceStatus.CANCELLED)
    assert cancelled.status is ab.InvoiceStatus.CANCELLED and cancelled.raw is not None
    assert cancelled.raw["status"] == "C"
    with pytest.raises(ab.ValidationError):
        await si.change_invoice_status("R-1", "XX")


async def test_payments_kinds_list_and_create(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    await ledger.customers.upsert(customer("K-1"))
    await ledger.invoices.create(invoice("R-1"))  # total 324.62
    await ledger.invoices.create(invoice("R-2", issue_date=dt.date(2024, 5, 2)))
    day = dt.date(2024, 6, 1)
    paid = await ledger.payments.create(
        ab.Payment(invoice_number="R-1", date=day, amount=Decimal("300.00"), account="T", memo="E-Banking")
    )
    assert paid.kind is ab.PaymentKind.PAYMENT and paid.amount == Decimal("300.00") and paid.id
    assert paid.currency == "CHF"
    assert (await ledger.invoices.get("R-1")).status is ab.InvoiceStatus.PARTIALLY_PAID
    kinds = [
        (ab.PaymentKind.CASH_DISCOUNT, "C", "20.00"),
        (ab.PaymentKind.ROUNDING, "D", "0.02"),
        (ab.PaymentKind.WRITE_OFF, "W", "4.60"),
    ]
    for kind, code, amount in kinds:
        made = await ledger.payments.create(
            ab.Payment(invoice_number="R-1", date=day + dt.timedelta(days=1), amount=Decimal(amount), kind=kind)
        )
        assert made.kind is kind
        assert made.raw is not None and made.raw["type"] == code
    r1 = await ledger.invoices.get("R-1")
    assert r1.status is ab.InvoiceStatus.PAID
    assert r1.paid_amount == Decimal("324.62")
    await ledger.payments.create(ab.Payment(invoice_number="R-2", date=day, amount=Decimal("1.00")))

    listed = [p async for p in ledger.payments.list(invoice_number="R-1")]
    assert [(p.kind, p.amount) for p in listed] == [(ab.PaymentKind.PAYMENT, Decimal("300.00"))] + [
        (k, Decimal(a)) for k, _c, a in kinds
    ]
    assert len([p async for p in ledger.payments.list()]) == 5  # every invoice's payments
    assert [p.invoice_number async for p in ledger.payments.list(until=day)] == ["R-1", "R-2"]
    assert len([p async for p in ledger.payments.list(since=day + dt.timedelta(days=1))]) == 3

    sandbox.request_log.clear()
    with pytest.raises(ab.ValidationError) as info:
        await ledger.payments.create(
            ab.Payment(invoice_number="R-1", date=day, amount=Decimal(1), kind=ab.PaymentKind.BANK_FEE, account="1090")
        )
    assert set(info.value.fields) == {"kind", "account"}
    assert sandbox.request_log == []
    with pytest.raises(ab.ValidationError, match="does not exist"):
        await ledger.payments.create(ab.Payment(invoice_number="R-404", date=day, amount=Decimal(1)))


async def test_configuration_extras_and_raw(ledger: ab.Ledger) -> None:
    si = adapter(ledger)
    units = await si.units()
    assert {u["name"] for u in units} >= {"piece", "hour"}
    assert (await si.bank_accounts())[0]["iban"].startswith("CH")
    assert (await si.isrs())[0]["type"] == "ISR+"
    assert (await si.owner())["surname"] == "Hans"
    response = await ledger.raw("GET", "/catalog/configuration/units/7")
    assert response.status == 200 and response.json()["item"]["name"] == "piece"
    assert response.request_id
    missing = await ledger.raw("GET", "/catalog/configuration/units/999")
    assert missing.status == 404 and missing.json()["meta"] == {"entity_type": "units"}
