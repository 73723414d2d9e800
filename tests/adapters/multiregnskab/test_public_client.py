"""End to end: the `multiregnskab` adapter (Public Client API) against the sandbox over real sockets."""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab import MultiRegnskabAdapter
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab

PDF = b"%PDF-1.4 test document"


def doc(name: str = "bilag.pdf", content: bytes = PDF) -> ab.Document:
    return ab.Document(filename=name, content=content, content_type="application/pdf", description=f"Bilag {name}")


def registration(attachments: int = 1, reference: str | None = "ref-2026-11") -> ab.Registration:
    return ab.Registration(
        date=_dt.date(2026, 11, 30),
        description="Taxi og rejse",
        lines=[
            ab.PostingLine(account="5820", amount=Decimal("-1250.50")),
            ab.PostingLine(account="3620", amount=Decimal("1000.40"), vat_code="DKI25"),
            ab.PostingLine(account="3630", amount=Decimal("250.10")),
        ],
        attachments=[doc(f"bilag-{i}.pdf", PDF + bytes([i])) for i in range(attachments)],
        reference=reference,
    )


def customer(number: str = "K-100", **changes: Any) -> ab.Customer:
    values: dict[str, Any] = {
        "number": number,
        "name": "Kunde ApS",
        "email": "faktura@kunde.dk",
        "address": ab.Address(street="Bygaden 1", postcode="8000", city="Aarhus C", country="DK"),
        "vat_number": "12345678",
        "payment_terms_days": 14,
    }
    values.update(changes)
    return ab.Customer(**values)


def adapter(ledger: ab.Ledger) -> MultiRegnskabAdapter:
    assert isinstance(ledger.adapter, MultiRegnskabAdapter)
    return ledger.adapter


# --- companies -----------------------------------------------------------------------------------------------------


async def test_companies_list_and_default_is_last_used(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    assert ab.Capability.COMPANIES_LIST in ledger.capabilities
    companies = await ledger.companies()
    assert [(c.id, c.name) for c in companies] == [("1001", "Bager Hansen ApS"), ("1002", "Tømrer Jensen IVS")]
    assert companies[0].raw["cvr"] == "11223344"
    assert await adapter(ledger).company_xid() == 1002  # lastCompanies[0]


@pytest.mark.parametrize("company", [1001, "1001", "11223344", "Bager Hansen ApS"])
async def test_explicit_company_by_xid_cvr_or_name(connect: Any, company: object) -> None:
    async with connect.public(company=company) as ledger:
        assert await adapter(ledger).company_xid() == 1001


async def test_first_company_when_none_was_used(connect: Any, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.last_companies[sandbox.username] = []
    async with connect.public() as ledger:
        assert await adapter(ledger).company_xid() == 1001


async def test_unknown_company_is_a_configuration_error(connect: Any) -> None:
    async with connect.public(company="Ukendt A/S") as ledger:
        with pytest.raises(ab.ConfigurationError, match="Ukendt"):
            await adapter(ledger).company_xid()


async def test_no_company_access(connect: Any, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.access[sandbox.username] = []
    async with connect.public() as ledger:
        assert await ledger.companies() == []
        with pytest.raises(ab.PermissionDenied):
            await ledger.documents.upload(doc())


# --- customers -----------------------------------------------------------------------------------------------------


async def test_customers_create_list_get(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    created = await ledger.customers.upsert(customer())
    assert created.id is not None
    stored = sandbox.company(1002).customers[int(created.id)]
    assert stored["customerName"] == "Kunde ApS" and stored["address1"] == "Bygaden 1"
    assert stored["languageCode"] == "DA" and stored["currencyCode"] == "DKK" and stored["paymentTermsDays"] == 14
    numbers = [c.number async for c in ledger.customers.list()]
    assert numbers == ["K-100"]
    fetched = await ledger.customers.get("K-100")
    assert fetched.id == created.id and fetched.email == "faktura@kunde.dk" and fetched.payment_terms_days == 14
    with pytest.raises(ab.NotFound):
        await ledger.customers.get("K-999")


async def test_customer_upsert_same_is_noop_and_different_is_conflict(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    await ledger.customers.upsert(customer())
    again = await ledger.customers.upsert(customer())
    assert len(sandbox.company(1002).customers) == 1 and again.number == "K-100"
    assert len(sandbox.calls_to("POST", "/customers")) == 1
    with pytest.raises(ab.Conflict, match="city"):
        await ledger.customers.upsert(customer(address=ab.Address(street="Bygaden 1", postcode="5000", city="Odense")))


async def test_customer_validation_before_io(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    before = len(sandbox.calls)
    with pytest.raises(ab.ValidationError) as info:
        await ledger.customers.upsert(ab.Customer(number="K-1", name="x" * 151, iban="DK50", language="de"))
    assert {"name", "address.street", "address.postcode", "address.city", "iban", "language"} <= set(info.value.fields)
    assert len(sandbox.calls) == before


async def test_customer_create_dropped_after_commit_is_resolved_by_lookup(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    sandbox.faults.add("POST", "/customers", drop="after")
    created = await ledger.customers.upsert(customer("K-200"))
    assert created.number == "K-200" and created.id is not None
    assert len(sandbox.company(1002).customers) == 1  # the lookup found it: no second create
    assert len(sandbox.calls_to("POST", "/customers")) == 1


# --- products, units -----------------------------------------------------------------------------------------------


async def test_products_product_types_units(ledger: ab.Ledger) -> None:
    mr = adapter(ledger)
    types = await mr.product_types()
    assert [t["typeName"] for t in types] == ["Salg af ydelser", "Salg af varer"]
    products = await mr.products()
    assert products[0]["productId"] == "P2345" and products[0]["prices"][0]["price"] == Decimal("33.95")
    units = await mr.units_of_measure("da")
    assert {"uomCode": "EA", "singularis": "stk.", "pluralis": "stk."} in units
    assert (await mr.units_of_measure("EN"))[0]["singularis"] == "piece"


# --- invoices ------------------------------------------------------------------------------------------------------


async def test_invoice_draft(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    await ledger.customers.upsert(customer())
    today = sandbox.today()
    invoice = ab.Invoice(
        status=ab.InvoiceStatus.DRAFT,
        number="F-1",
        customer_number="K-100",
        issue_date=today,
        title="Assistance",
        lines=[
            ab.InvoiceLine(description="Abonnement", item_number="P2345", quantity=Decimal(3), unit_price="33.95"),
            ab.InvoiceLine(
                description="Timer", account="Salg af ydelser", quantity="1.5", unit_price="1200", unit="HUR"
            ),
            ab.InvoiceLine(description="Diverse", account="10022", unit_price="1234.5"),
        ],
    )
    created = await ledger.invoices.create(invoice)
    assert created.status is ab.InvoiceStatus.DRAFT and created.id is not None
    stored = sandbox.company(1002).invoices[int(created.id)]
    assert stored["date"] == today.isoformat() and stored["title"] == "Assistance"
    lines = stored["lines"]
    assert [(ln["lineNo"], ln["productTypeXid"]) for ln in lines] == [(0, 10021), (1, 10021), (2, 10022)]
    assert lines[0]["productXid"] == 100201 and lines[0]["amount"] == "101,85" and lines[0]["numberOfUnits"] == "3"
    assert lines[1]["amount"] == "1800,00" and lines[1]["numberOfUnits"] == "1,5" and lines[1]["priceEach"] == "1200,00"
    assert lines[2]["amount"] == "1234,50"
    assert created.net_total == Decimal("3136.35")


async def test_invoice_needs_known_customer_and_product(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    line = ab.InvoiceLine(description="x", unit_price="1")
    invoice = ab.Invoice(status=ab.InvoiceStatus.DRAFT, number="F-2", customer_number="K-404", issue_date=sandbox.today(), lines=[line])
    with pytest.raises(ab.ValidationError, match="K-404"):
        await ledger.invoices.create(invoice)
    await ledger.customers.upsert(customer())
    with pytest.raises(ab.ValidationError, match="product"):
        await ledger.invoices.create(
            ab.Invoice(status=ab.InvoiceStatus.DRAFT, number="F-2", customer_number="K-100", issue_date=sandbox.today(), lines=[line])
        )
    with pytest.raises(ab.ValidationError) as info:
        await ledger.invoices.create(
            ab.Invoice(
        status=ab.InvoiceStatus.DRAFT,
                number="F-3",
                customer_number="K-100",
                issue_date=sandbox.today(),
                lines=[ab.InvoiceLine(description="y" * 101, unit_price="1", discount_percent="5")],
                tax_lines=[ab.TaxLine(account="7000", amount="1")],
            )
        )
    assert set(info.value.fields) == {"lines[0].description", "lines[0].discount_percent", "tax_lines"}
    assert not sandbox.company(1002).invoices


async def test_invoice_with_default_product_type(connect: Any, sandbox: MultiRegnskabSandbox) -> None:
    async with connect.public(default_product_type=10022) as ledger:
        await ledger.customers.upsert(customer())
        line = ab.InvoiceLine(description="Vare", unit_price="10")
        created = await ledger.invoices.create(
            ab.Invoice(status=ab.InvoiceStatus.DRAFT, number="F-9", customer_number="K-100", issue_date=sandbox.today(), lines=[line])
        )
        assert created.id is not None
        assert sandbox.company(1002).invoices[int(created.id)]["lines"][0]["productTypeXid"] == 10022


# --- bank ----------------------------------------------------------------------------------------------------------


async def test_bank_transactions_always_send_their_window(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    items = [t async for t in ledger.bank_transactions.list()]
    # the default look-back (a year) reaches postings the API's own one-month default would hide
    assert [t.text for t in items] == ["Moms", "Husleje", "Indbetaling faktura 1042", "Gebyr januar"]
    assert [t.amount for t in items] == [
        Decimal("-21337.25"),
        Decimal("-8750.50"),
        Decimal("12500.00"),
        Decimal("-197.00"),
    ]
    assert items[1].currency == "DKK" and items[0].counterparty == "Skattestyrelsen" and items[0].account == "10027"
    calls = sandbox.calls_to("GET", "/bankPostings")
    assert len(calls) >= 12  # one-month windows
    assert all("fromDateIncl" in c.query and "toDateIncl" in c.query for c in calls)
    windows = [(c.query["fromDateIncl"], c.query["toDateIncl"]) for c in calls]
    assert windows[-1][1] == sandbox.today().isoformat()
    for (_, end), (start, _) in itertools.pairwise(windows):  # contiguous, no gap, no overlap
        assert _dt.date.fromisoformat(start) - _dt.date.fromisoformat(end) == _dt.timedelta(days=1)


async def test_bank_transactions_explicit_window_and_account(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    today = sandbox.today()
    since, until = today - _dt.timedelta(days=50), today - _dt.timedelta(days=10)
    items = [t async for t in ledger.bank_transactions.list(account="Driftskonto", since=since, until=until)]
    assert [t.text for t in items] == ["Husleje", "Indbetaling faktura 1042"]
    calls = sandbox.calls_to("GET", "/bankPostings")
    assert calls[0].query["fromDateIncl"] == since.isoformat() and calls[-1].query["toDateIncl"] == until.isoformat()
    with pytest.raises(ab.NotFound):
        [t async for t in ledger.bank_transactions.list(account="Opsparing")]


async def test_sandbox_default_bank_window_is_one_month(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    response = await ledger.raw("GET", "/bankPostings/1002/10027")
    texts = [p["bankText"] for p in response.json()["bpList"]]
    assert sorted(texts) == ["Gebyr januar", "Indbetaling faktura 1042"]  # 45 and 200 days ago are outside


async def test_bank_accounts_and_balances(ledger: ab.Ledger) -> None:
    accounts = await adapter(ledger).bank_accounts()
    assert accounts == [
        {"xid": 10027, "name": "Driftskonto", "currency": "DKK", "banksIdentification": "1234 0123456789"}
    ]
    balances = await adapter(ledger).bank_balances()
    assert balances[0]["balanceAmount"] == Decimal("123456.78") and balances[0]["balanceType"] == "ITBD"


# --- documents -----------------------------------------------------------------------------------------------------


async def test_document_upload_visible_get_delete(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    ref = await ledger.documents.upload(doc("kvittering.pdf", b"%PDF-1.7 hello"))
    upload = sandbox.calls_to("POST", "/filesForUseInRegistrations")[0].body
    assert upload["keepHiddenUntilRegistration"] is False and upload["companyXid"] == 1002
    assert base64.b64decode(upload["fileBodyBase64"]) == b"%PDF-1.7 hello"
    assert ref.id in [d.id async for d in ledger.documents.list()]
    fetched = await ledger.documents.get(ref.id)
    assert fetched.content == b"%PDF-1.7 hello" and fetched.filename == "kvittering.pdf"
    assert fetched.content_type == "application/pdf" and fetched.description == "Bilag kvittering.pdf"
    await ledger.documents.delete(ref.id)
    assert ref.id not in [d.id async for d in ledger.documents.list()]
    with pytest.raises(ab.NotFound):
        await ledger.documents.delete(ref.id)
    with pytest.raises(ab.NotFound):
        await ledger.documents.get(ref.id)
    with pytest.raises(ab.ValidationError):
        await ledger.documents.get("abc")


async def test_hidden_upload_is_not_listed(connect: Any, sandbox: MultiRegnskabSandbox) -> None:
    async with connect.public(keep_uploads_hidden=True) as ledger:
        ref = await ledger.documents.upload(doc())
        assert sandbox.calls_to("POST", "/filesForUseInRegistrations")[0].body["keepHiddenUntilRegistration"] is True
        assert ref.id not in [d.id async for d in ledger.documents.list()]
        assert (await ledger.documents.get(ref.id)).content == PDF


async def test_archive_list_follows_continuation_tokens(connect: Any, sandbox: MultiRegnskabSandbox) -> None:
    async with connect.public(archive_page_size=2) as ledger:
        for i in range(3):
            await ledger.documents.upload(doc(f"d{i}.pdf"))
        names = [d.filename async for d in ledger.documents.list()]
    assert names == [
        "kvittering-1.pdf",
        "kvittering-2.pdf",
        "faktura-leverandor.pdf",
        "Bilag d0.pdf",
        "Bilag d1.pdf",
        "Bilag d2.pdf",
    ]
    calls = sandbox.calls_to("GET", "/archiveFiles")
    assert len(calls) == 3 and all(c.query["maxLines"] == "2" for c in calls)
    assert "continuationToken" not in calls[0].query and all("continuationToken" in c.query for c in calls[1:])


async def test_update_document_and_omit_body(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    ref = await ledger.documents.upload(doc())
    await adapter(ledger).update_document(
        ref.id, date=_dt.date(2026, 1, 2), friendly_filename="Nyt navn", comment="Tjekket"
    )
    response = await ledger.raw(
        "GET", "/archiveFile", params={"companyXid": "1002", "archiveFileXid": ref.id, "omitFileBody": "true"}
    )
    data = response.json()
    assert data["fileBodyBase64"] == "" and data["friendlyFilename"] == "Nyt navn" and data["date"] == "2026-01-02"
    assert data["comments"][0]["comment"] == "Tjekket"
    with pytest.raises(ab.NotFound):
        await adapter(ledger).update_document("999999", date=_dt.date(2026, 1, 2), friendly_filename="x")


# --- registrations -------------------------------------------------------------------------------------------------


async def test_registration_with_attachments(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    ref = await ledger.registrations.submit(registration(attachments=3))
    assert ref.reference == "ref-2026-11" and ref.id is not None
    stored = sandbox.company(1002).registrations[int(ref.id)]
    assert stored["debitCreditlines"] == [
        {"accountNumber": "5820", "amount": "-1250,50"},
        {"accountNumber": "3620", "amount": "1000,40", "vatCode": "DKI25"},
        {"accountNumber": "3630", "amount": "250,10"},
    ]
    files = [f["xid"] for f in stored["filesToAttachXids"]]
    assert len(files) == 3 and ref.raw is not None and list(ref.raw["filesToAttachXids"]) == files
    uploads = sandbox.calls_to("POST", "/filesForUseInRegistrations")
    assert all(c.body["keepHiddenUntilRegistration"] is True for c in uploads)
    post = sandbox.calls_to("POST", "/suggestedRegistrations")[0]
    assert post.headers["X-MultiRegnskabTraceId"] == "ref-2026-11"
    # attached files are now visible and delete-protected
    assert {int(d.id) for d in [d async for d in ledger.documents.list()]} >= set(files)
    with pytest.raises(ab.Conflict):
        await ledger.documents.delete(str(files[0]))
    assert (await ledger.documents.get(str(files[1]))).content == PDF + bytes([1])


async def test_registration_refused_before_io(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    before = len(sandbox.calls)
    with pytest.raises(ab.ValidationError, match="at most 3 attachments"):
        await ledger.registrations.submit(registration(attachments=4))
    with pytest.raises(ab.ValidationError, match="sum to zero"):
        ab.Registration(
            date=_dt.date(2026, 1, 1),
            description="x",
            lines=[ab.PostingLine(account="1", amount="10"), ab.PostingLine(account="2", amount="-9.99")],
        )
    reg = registration()
    object.__setattr__(
        reg, "lines", (ab.PostingLine(account="1", amount="10"), ab.PostingLine(account="2", amount="-9"))
    )
    with pytest.raises(ab.ValidationError, match="sum to zero"):
        await ledger.registrations.submit(reg)
    assert len(sandbox.calls) == before


async def test_definite_failure_deletes_the_uploads(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    files_before = set(sandbox.company(1002).files)
    sandbox.faults.add("POST", "/suggestedRegistrations", status=400)
    with pytest.raises(ab.Unprocessable):
        await ledger.registrations.submit(registration(attachments=2))
    assert set(sandbox.company(1002).files) == files_before  # nothing orphaned
    assert len(sandbox.calls_to("DELETE", "/archiveFile")) == 2
    assert not sandbox.company(1002).registrations


async def test_dropped_connection_after_commit_is_outcome_unknown(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox, sleep: Any
) -> None:
    sandbox.faults.add("POST", "/suggestedRegistrations", drop="after")
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.registrations.submit(registration(attachments=1))
    assert info.value.reference == "ref-2026-11"
    assert len(sandbox.company(1002).registrations) == 1  # stored once ...
    assert len(sandbox.calls_to("POST", "/suggestedRegistrations")) == 1  # ... and never resent
    assert not sandbox.calls_to("DELETE", "/archiveFile")  # the attachment may be referenced: kept
    assert "kept" in str(info.value)
    assert str(info.value).count("ref-2026-11") == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_on_registration_is_not_resent(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox, status: int
) -> None:
    sandbox.faults.add("POST", "/suggestedRegistrations", status=status)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.registrations.submit(registration(attachments=0, reference="payroll-2026-10"))
    assert info.value.reference == "payroll-2026-10"
    assert len(sandbox.calls_to("POST", "/suggestedRegistrations")) == 1


async def test_429_on_registration_is_resent_safely(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox, sleep: Any
) -> None:
    sandbox.faults.add("POST", "/suggestedRegistrations", status=429, headers={"Retry-After": "2"})
    ref = await ledger.registrations.submit(registration(attachments=0))
    assert ref.id is not None and len(sandbox.company(1002).registrations) == 1
    assert sleep.delays == [2.0]


async def test_failed_attachment_upload_cleans_up(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    files_before = set(sandbox.company(1002).files)
    sandbox.faults.add("POST", "/filesForUseInRegistrations", status=400)
    with pytest.raises(ab.Unprocessable):
        await ledger.registrations.submit(registration(attachments=2))
    assert set(sandbox.company(1002).files) == files_before
    assert not sandbox.calls_to("POST", "/suggestedRegistrations")


async def test_ambiguous_attachment_upload_means_not_submitted(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    sandbox.faults.add("POST", "/filesForUseInRegistrations", drop="after")
    with pytest.raises(ab.TransportError, match="not submitted"):
        await ledger.registrations.submit(registration(attachments=1))
    assert not sandbox.calls_to("POST", "/suggestedRegistrations")


# --- reads: retries, errors ----------------------------------------------------------------------------------------


async def test_reads_are_retried(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox, sleep: Any) -> None:
    sandbox.faults.add("GET", "/customers", status=503, times=2)
    assert [c async for c in ledger.customers.list()] == []
    assert len(sleep.delays) == 2 and len(sandbox.calls_to("GET", "/customers")) == 3


async def test_dropped_read_is_retried(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.faults.add("GET", "/productTypes", drop="before")
    assert len(await adapter(ledger).product_types()) == 2


async def test_malformed_body_is_a_response_error(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.faults.add("GET", "/companies", malformed=True)
    with pytest.raises(ab.ResponseError):
        await ledger.companies()


async def test_unsupported_operations(ledger: ab.Ledger) -> None:
    with pytest.raises(ab.UnsupportedOperation):
        await ledger.bank_transactions.submit([])
    with pytest.raises(ab.UnsupportedOperation):
        await ledger.payments.create(ab.Payment(invoice_number="1", date=_dt.date(2026, 1, 1), amount="1"))
    with pytest.raises(ab.UnsupportedOperation):
        await ledger.invoices.get("1")


async def test_concurrent_calls_share_one_company_lookup(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    await asyncio.gather(*(adapter(ledger).product_types() for _ in range(5)))
    assert len(sandbox.calls_to("GET", "/companies")) == 1


# --- writes whose 2xx answer cannot be read ----------------------------------------------------------------------


async def test_unreadable_answer_after_registration_stored_is_outcome_unknown(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    sandbox.faults.add("POST", "/suggestedRegistrations", malformed=True)  # performed, then 200 "<html>oops"
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.registrations.submit(registration(attachments=2))
    assert info.value.reference == "ref-2026-11"
    [stored] = sandbox.company(1002).registrations.values()
    kept = [f["xid"] for f in stored["filesToAttachXids"]]
    assert len(kept) == 2 and all(str(xid) in str(info.value) for xid in kept)
    assert not sandbox.calls_to("DELETE", "/archiveFile")
    assert len(sandbox.calls_to("POST", "/suggestedRegistrations")) == 1


async def test_unreadable_attachment_upload_answer_means_not_submitted(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    sandbox.faults.add("POST", "/filesForUseInRegistrations", malformed=True)
    with pytest.raises(ab.TransportError, match="not submitted"):
        await ledger.registrations.submit(registration(attachments=1))
    assert not sandbox.calls_to("POST", "/suggestedRegistrations")


async def test_unreadable_invoice_answer_is_outcome_unknown(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    await ledger.customers.upsert(customer())
    sandbox.faults.add("POST", "/invoices", malformed=True)
    line = ab.InvoiceLine(description="Abonnement", item_number="P2345", unit_price="33.95")
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.invoices.create(
            ab.Invoice(status=ab.InvoiceStatus.DRAFT, number="F-7", customer_number="K-100", issue_date=sandbox.today(), lines=[line])
        )
    assert info.value.reference == "F-7"
    assert len(sandbox.company(1002).invoices) == 1  # stored: a plain retry would make a second draft


async def test_unreadable_customer_answer_is_resolved_by_lookup(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    sandbox.faults.add("POST", "/customers", malformed=True)
    created = await ledger.customers.upsert(customer())
    [xid] = sandbox.company(1002).customers
    assert created.id == str(xid) and created.number == "K-100"
    assert len(sandbox.calls_to("POST", "/customers")) == 1


async def test_unreadable_document_upload_answer_is_outcome_unknown(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    before = set(sandbox.company(1002).files)
    sandbox.faults.add("POST", "/filesForUseInRegistrations", malformed=True)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.documents.upload(doc("kvittering.pdf"))
    assert info.value.reference == "kvittering.pdf"
    assert len(set(sandbox.company(1002).files) - before) == 1


async def test_unreadable_product_price_is_a_response_error(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.company(1002).products[0]["prices"][0]["price"] = "33,95 kr"
    with pytest.raises(ab.ResponseError, match="price"):
        await adapter(ledger).products()


# --- invoice line amounts are rounded to øre ---------------------------------------------------------------------


async def test_invoice_line_amounts_rounded_half_up_to_ore(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    await ledger.customers.upsert(customer())
    lines = [
        ab.InvoiceLine(description="Timer", item_number="P2345", quantity="1.5", unit_price="19.95"),  # 29.925
        ab.InvoiceLine(description="Gebyr", item_number="P2345", quantity="0.333", unit_price="10"),  # 3.33
        ab.InvoiceLine(description="Rabat", item_number="P2345", quantity="1", unit_price="-0.125"),  # -0.125
    ]
    created = await ledger.invoices.create(
        ab.Invoice(status=ab.InvoiceStatus.DRAFT, number="F-8", customer_number="K-100", issue_date=sandbox.today(), lines=lines)
    )
    assert created.id is not None
    sent = sandbox.company(1002).invoices[int(created.id)]["lines"]
    assert [ln["amount"] for ln in sent] == ["29,93", "3,33", "-0,13"]
    assert created.net_total == Decimal("33.13")  # the sum of what was sent
