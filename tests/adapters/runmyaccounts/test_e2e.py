"""End to end over real sockets against the sandbox, in JSON and in XML mode, for every resource."""

from __future__ import annotations

import datetime as _dt
import logging
from decimal import Decimal as D
from typing import Any

import pytest
from accounting_bridge.adapters.runmyaccounts import Payable, Vendor
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge import InvoiceLine, InvoiceStatus, TaxLine

API_KEY = "rma-secret-key-4711"
DAY = _dt.date(2024, 5, 2)
PDF = b"%PDF-1.4\n% test receipt\n%%EOF\n"


def transaction_invoice(number: str, customer: str = "K-1001", day: _dt.date = DAY) -> ab.Invoice:
    return ab.Invoice(
        number=number,
        customer_number=customer,
        issue_date=day,
        due_date=day + _dt.timedelta(days=30),
        lines=[InvoiceLine(description="Schulung", unit_price=D("1250.00"), account="3400")],
        tax_lines=[TaxLine(account="2201", amount=D("101.25"))],
    )


async def test_customers(ledger: ab.Ledger) -> None:
    numbers = [c.number async for c in ledger.customers.list()]
    assert numbers == ["K-001", "K-1001", "K-2040"]
    customer = await ledger.customers.get("K-1001")
    assert customer.payment_terms_days == 30 and customer.address is not None
    new = ab.Customer(number="K-9", name="Gärtnerei Rüegg", address=ab.Address(street="Hauptgasse 3", city="Thun"))
    stored = await ledger.customers.upsert(new)
    assert stored.name == "Gärtnerei Rüegg" and stored.address == new.address
    with pytest.raises(ab.NotFound):
        await ledger.customers.get("K-404")


async def test_parts_charts_departments_projects(ledger: ab.Ledger) -> None:
    adapter: Any = ledger.adapter
    parts = {p.number: p for p in await adapter.list_parts()}
    assert parts["SW-LIC"].sellprice == D("480.0") and parts["SW-LIC"].tax_accounts == ("2201",)
    charts = {c.accno: c for c in await adapter.list_charts()}
    assert "AR_paid" in charts["1090"].link and charts["1100"].allow_gl is False
    assert [d.name for d in await adapter.list_departments()] == ["Entwicklung", "Beratung"]
    (project,) = await adapter.list_projects()  # single item: object in JSON
    assert project.number == "PRJ-88"


async def test_invoices_both_shapes_filters_pdf_html(ledger: ab.Ledger) -> None:
    await ledger.invoices.create(transaction_invoice("240119", day=_dt.date(2024, 3, 6)))
    with_parts = ab.Invoice(
        number="240117", customer_number="K-2040", issue_date=_dt.date(2024, 5, 10), due_date=_dt.date(2024, 6, 9),
        lines=[InvoiceLine(description="Versand", item_number="VERSAND", unit_price=D("12.50"))],
    )  # fmt: skip
    created = await ledger.invoices.create(with_parts)
    assert created.total == D("13.51") and created.lines[0].item_number == "VERSAND"
    fetched = await ledger.invoices.get("240119")
    assert fetched.issue_date == _dt.date(2024, 3, 6) and fetched.total == D("1351.25")
    assert fetched.status is InvoiceStatus.OVERDUE  # due 2024-04-05, sandbox today 2024-05-15
    assert [i.number async for i in ledger.invoices.list()] == ["240119", "240117"]
    assert [i.number async for i in ledger.invoices.list(status=InvoiceStatus.OVERDUE)] == ["240119"]
    assert [i.number async for i in ledger.invoices.list(status=InvoiceStatus.OPEN)] == ["240117"]
    assert [i.number async for i in ledger.invoices.list(since=_dt.date(2024, 5, 1))] == ["240117"]
    assert [i.number async for i in ledger.invoices.list(until=_dt.date(2024, 3, 6))] == ["240119"]
    assert [i.number async for i in ledger.invoices.list(customer_number="K-2040")] == ["240117"]
    assert [i.number async for i in ledger.invoices.list(status=InvoiceStatus.DRAFT)] == []
    pdf = await ledger.invoices.pdf("240119")
    assert pdf.startswith(b"%PDF")
    html = await ledger.adapter.invoice_html("240119")  # type: ignore[attr-defined]
    assert "240119" in html
    with pytest.raises(ab.NotFound):
        await ledger.invoices.get("nope")


async def test_payments_list_create_and_processed_flags(ledger: ab.Ledger) -> None:
    adapter: Any = ledger.adapter
    await ledger.invoices.create(transaction_invoice("R-P"))
    first = await ledger.payments.create(ab.Payment(invoice_number="R-P", date=DAY, amount=D("1000.00"),
                                                    reference="ZKB-1"))  # fmt: skip
    assert first.id and first.account == "1090" and first.reference == "ZKB-1"
    second = await ledger.payments.create(ab.Payment(invoice_number="R-P", date=DAY, amount=D("351.25")))
    assert [p.amount async for p in ledger.payments.list(invoice_number="R-P")] == [D("1000.00"), D("351.25")]
    assert len([p async for p in ledger.payments.list()]) == 2
    assert [p async for p in ledger.payments.list(since=DAY + _dt.timedelta(days=1))] == []
    new = await adapter.payment_list()
    assert [p.raw["flag"] for p in new] == ["NEW", "NEW"]
    await adapter.set_as_processed([first.id])
    assert [p.id for p in await adapter.payment_list()] == [second.id]
    assert len([p async for p in ledger.payments.list()]) == 2  # the neutral list shows every payment


async def test_payment_on_unknown_invoice_is_not_found(ledger: ab.Ledger) -> None:
    with pytest.raises(ab.NotFound):
        await ledger.payments.create(ab.Payment(invoice_number="R-404", date=DAY, amount=D("1")))


async def test_account_transactions_saldo_and_bank_lines(ledger: ab.Ledger) -> None:
    adapter: Any = ledger.adapter
    await ledger.invoices.create(transaction_invoice("R-T"))
    await ledger.payments.create(ab.Payment(invoice_number="R-T", date=DAY, amount=D("1351.25")))
    lines = await adapter.account_transactions("10xx")
    assert [(t.accno, t.amount, t.reference) for t in lines] == [("1090", D("1351.25"), "R-T")]  # debit +, as PostingLine
    v2 = {r.accno: r.amount for r in await adapter.saldo()}
    assert v2["1090"] == D("1351.25") and v2["1100"] == D("0") and v2["3400"] == D("1250.00")
    v1 = {r.accno: r.amount for r in await adapter.saldo(version=1, accno="3400")}
    assert v1 == {"3400": D("1250.0")}
    money = [t async for t in ledger.bank_transactions.list(account="1090")]
    assert [(t.amount, t.date) for t in money] == [(D("1351.25"), DAY)]  # money in is +
    with pytest.raises(ab.UnsupportedOperation):
        await ledger.bank_transactions.submit([])


async def test_vendors_and_payables(ledger: ab.Ledger) -> None:
    adapter: Any = ledger.adapter
    vendor = await adapter.upsert_vendor(Vendor(number="L-77", name="Druckerei Blatt AG", city="Bern"))
    assert vendor.id and vendor.city == "Bern"
    assert [v.number for v in await adapter.list_vendors(sort="name desc")] == ["L-66", "L-77"]
    assert [v.number for v in await adapter.list_vendors(query="druck")] == ["L-77"]
    payable = Payable(
        number="L-2024-0311", vendor=vendor, issue_date=_dt.date(2024, 3, 11), due_date=_dt.date(2024, 6, 10),
        lines=(InvoiceLine(description="Toner", item_number="BUERO", unit_price=D("259.40"), account="6500"),),
    )  # fmt: skip
    created = await adapter.create_payable(payable)
    assert created.amount == D("259.4") and created.status == "OPEN" and created.lines[0].account == "6500"
    assert (await adapter.create_payable(payable)).number == payable.number  # already present, not duplicated
    assert [p.number for p in await adapter.list_payables(since=_dt.date(2024, 3, 1))] == ["L-2024-0311"]
    assert (await adapter.payable_pdf("L-2024-0311")).startswith(b"%PDF")
    paid = await adapter.create_payable_payment(ab.Payment(invoice_number="L-2024-0311", date=DAY, amount=D("259.40")))
    assert paid.amount == D("259.40")
    assert [p.amount for p in await adapter.list_payable_payments("L-2024-0311")] == [D("259.40")]
    assert (await adapter.get_payable("L-2024-0311")).status == "PAID"


async def test_documents_upload_and_belege_errors(sandbox: RmaSandbox, connect: Any) -> None:
    sandbox.max_upload = 64
    for fmt in ("json", "xml"):
        async with connect(sandbox, fmt) as ledger:
            doc = ab.Document(filename=f"beleg-{fmt}.pdf", content=PDF + fmt.encode(), content_type="application/pdf",
                              description="bitte auf 6500")  # fmt: skip
            ref = await ledger.documents.upload(doc)
            assert ref.id and ref.filename == doc.filename
            assert ref.raw is not None and ref.raw["comment"] == "bitte auf 6500"
            with pytest.raises(ab.Conflict) as conflict:  # 409: same CRC32
                await ledger.documents.upload(doc)
            assert "uploaded before" in str(conflict.value)
            with pytest.raises(ab.ValidationError):  # refused before any I/O
                await ledger.documents.upload(ab.Document(filename="a.txt", content=b"x", content_type="text/plain"))
            with pytest.raises(ab.BackendError) as wrong_type:  # the sandbox's own 415
                await ledger.adapter.upload_beleg(  # type: ignore[attr-defined]
                    ab.Document(filename="a.txt", content=b"x", content_type="text/plain")
                )
            assert wrong_type.value.status == 415
            with pytest.raises(ab.BackendError) as too_big:
                await ledger.documents.upload(ab.Document(filename="big.pdf", content=b"%PDF" + b"0" * 100,
                                                          content_type="application/pdf"))  # fmt: skip
            assert too_big.value.status == 413


async def test_registrations_gl_and_yearend(ledger: ab.Ledger, sandbox: RmaSandbox) -> None:
    registration = ab.Registration(
        date=DAY, description="Lohn Mai", reference="payroll-2024-05",
        lines=[ab.PostingLine(account="6500", amount=D("800.00"), text="Lohn"),
               ab.PostingLine(account="1090", amount=D("-800.00"))],
        attachments=[ab.Document(filename="lohn.pdf", content=PDF, content_type="application/pdf")],
    )  # fmt: skip
    ref = await ledger.registrations.submit(registration)
    assert ref.id and ref.reference == "payroll-2024-05"
    assert ref.raw is not None and len(ref.raw["attachments"]) == 1
    (entry,) = sandbox.state.gl
    assert entry["reference"] == "payroll-2024-05"
    lines = await ledger.adapter.account_transactions("6500")  # type: ignore[attr-defined]
    assert [(t.amount, t.module) for t in lines] == [(D("800.00"), "gl")]
    yearend = ab.Registration(date=_dt.date(2024, 12, 31), description="Abschluss",
                              lines=[ab.PostingLine(account="3400", amount=D("10")),
                                     ab.PostingLine(account="2030", amount=D("-10"))])  # fmt: skip
    assert (await ledger.adapter.submit_yearend(yearend)).id  # type: ignore[attr-defined]
    assert len(sandbox.state.yearend) == 1


async def test_raw_escape_hatch(ledger: ab.Ledger) -> None:
    response = await ledger.raw("GET", "demo/parts")
    assert response.status == 200 and b"SW-LIC" in response.body


# --- contract details ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["null", "{}", "empty_list", "empty_body"])
async def test_every_empty_list_form(sandbox: RmaSandbox, connect: Any, form: str) -> None:
    sandbox.empty_list_form = form
    async with connect(sandbox) as ledger:
        assert [i async for i in ledger.invoices.list()] == []
        assert await ledger.adapter.payment_list() == []


async def test_single_items_as_arrays_also_decode(sandbox: RmaSandbox, connect: Any) -> None:
    sandbox.single_as_object = False
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(transaction_invoice("R-ARR"))
        (invoice,) = [i async for i in ledger.invoices.list()]
        assert invoice.total == D("1351.25") and len(invoice.lines) == 1


@pytest.mark.parametrize("mode", ["query", "bearer", "header"])
async def test_auth_modes_and_403(sandbox: RmaSandbox, connect: Any, mode: str) -> None:
    async with connect(sandbox, auth=mode) as ledger:
        assert len([c async for c in ledger.customers.list()]) == 3
    async with connect(sandbox, auth=mode, api_key="wrong-key-123") as ledger:
        with pytest.raises(ab.PermissionDenied) as info:
            await ledger.customers.get("K-001")
        assert "verweigert" in str(info.value)  # the German message is kept
    async with connect(sandbox, auth=mode, tenant="other") as ledger:
        with pytest.raises(ab.PermissionDenied):
            [c async for c in ledger.customers.list()]


async def test_error_body_with_200_is_a_failure(ledger: ab.Ledger, sandbox: RmaSandbox) -> None:
    with pytest.raises(ab.Unprocessable) as info:
        await ledger.customers.upsert(ab.Customer(number="K-L", name="Sprache AG", language="xx"))
    assert info.value.status == 200
    assert "Die Sprache 'xx' ist unbekannt" in str(info.value)


async def test_idempotent_create_same_and_different_content(ledger: ab.Ledger, sandbox: RmaSandbox) -> None:
    invoice = transaction_invoice("R-I")
    await ledger.invoices.create(invoice)
    again = await ledger.invoices.create(invoice)
    assert again.number == "R-I" and ledger.adapter.last_create_was_present  # type: ignore[attr-defined]
    assert sum(1 for m, p in sandbox.requests if m == "POST" and p.endswith("/invoices")) == 1
    changed = transaction_invoice("R-I", customer="K-2040")
    with pytest.raises(ab.Conflict):
        await ledger.invoices.create(changed)


async def test_sandbox_duplicate_is_400_in_german(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(transaction_invoice("R-DUP"))
        body = '{"invnumber": "R-DUP", "transdate": "2024-05-02", "customernumber": "K-001", ' \
               '"incomeentries": {"incomeentry": {"amount": 1, "income_accno": "3400"}}}'  # fmt: skip
        response = await ledger.raw("POST", "demo/invoices", body=body, headers={"Content-Type": "application/json"})
        assert response.status == 400
        assert response.json() == {"error": "Die Rechnungsnummer R-DUP existiert bereits."}
        assert b'{ "error": ' in response.body


async def test_xml_when_no_accept_and_204_on_create(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        response = await ledger.raw("GET", "demo/projects", headers={"Accept": ""})
        assert response.content_type == "application/xml" and b"<projects>" in response.body
        xml = (b"<invoice><invnumber>X1</invnumber><transdate>2024-05-02</transdate>"
               b"<customernumber>K-001</customernumber><incomeentries><incomeentry><amount>5</amount>"
               b"<income_accno>3400</income_accno></incomeentry></incomeentries></invoice>")  # fmt: skip
        created = await ledger.raw("POST", "demo/invoices", body=xml, headers={"Content-Type": "application/xml"})
        assert created.status == 204 and created.body == b""
        assert (await ledger.invoices.get("X1")).total == D("5.00")


# --- faults --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("wire_format", ["json", "xml"])
async def test_dropped_connection_after_commit_creates_exactly_one_invoice(
    sandbox: RmaSandbox, connect: Any, wire_format: str
) -> None:
    async with connect(sandbox, wire_format) as ledger:
        sandbox.faults.drop_after_commit()
        created = await ledger.invoices.create(transaction_invoice("R-DROP"))
        assert created.number == "R-DROP" and created.total == D("1351.25")
        assert sandbox.faults.pending("drop") == 0  # the connection really was cut after the commit
        assert list(sandbox.state.invoices) == ["R-DROP"]
        assert sum(1 for m, p in sandbox.requests if m == "POST" and p.endswith("/invoices")) == 1
        assert [i.number async for i in ledger.invoices.list()] == ["R-DROP"]


async def test_500_after_commit_is_resolved_by_lookup(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.fail_after_commit = [500]
        await ledger.invoices.create(transaction_invoice("R-500"))
        assert list(sandbox.state.invoices) == ["R-500"]


async def test_5xx_before_commit_is_retried_once_absent(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.fail_next(503, count=2)  # the look-up GET, then the POST
        await ledger.invoices.create(transaction_invoice("R-503"))
        assert list(sandbox.state.invoices) == ["R-503"]
        assert ledger.adapter.transport.sleep.delays  # type: ignore[attr-defined]


async def test_dropped_payment_is_not_duplicated(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(transaction_invoice("R-PD"))
        sandbox.faults.drop_after_commit()
        payment = await ledger.payments.create(ab.Payment(invoice_number="R-PD", date=DAY, amount=D("100.00")))
        assert payment.amount == D("100.00")
        assert sandbox.faults.pending("drop") == 0
        assert len(sandbox.state.payments) == 1


async def test_latency_beyond_timeout_is_a_transport_error(sandbox: RmaSandbox, connect: Any) -> None:
    sandbox.faults.latency = 0.3
    async with connect(sandbox, timeout=0.05, max_retries=1) as ledger:
        with pytest.raises(ab.TransportError):
            await ledger.customers.get("K-001")


async def test_api_key_never_in_logs_or_errors(
    sandbox: RmaSandbox, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="accounting_bridge")
    texts: list[str] = []
    for mode in ("query", "bearer", "header"):
        async with connect(sandbox, auth=mode) as ledger:
            texts += [repr(ledger), repr(ledger.adapter), repr(ledger.adapter.settings),  # type: ignore[attr-defined]
                      repr(ledger.adapter.transport)]  # type: ignore[attr-defined]  # fmt: skip
            await ledger.customers.get("K-001")
            with pytest.raises(ab.NotFound) as missing:
                await ledger.invoices.get("R-404")
            texts.append(str(missing.value))
            sandbox.faults.drop_after_commit()
            with pytest.raises(ab.AccountingError) as dropped:  # set_as_processed is idempotent: retried, then 400
                await ledger.adapter.set_as_processed(["999"])  # type: ignore[attr-defined]
            texts.append(str(dropped.value))
            sandbox.faults.fail_next(500, count=10)
            with pytest.raises(ab.ServerError) as server:
                await ledger.customers.get("K-001")
            texts.append(str(server.value))
            sandbox.faults.clear()
    async with connect(sandbox, api_key="wrong-secret-999") as ledger:
        with pytest.raises(ab.PermissionDenied) as denied:
            await ledger.customers.get("K-001")
        texts.append(str(denied.value))
    assert "api_key=***" in caplog.text  # the query mode was logged, redacted
    for text in [caplog.text, *texts]:
        assert API_KEY not in text
        assert "wrong-secret-999" not in text
