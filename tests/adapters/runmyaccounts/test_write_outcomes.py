"""Outcomes of writes that landed, and the completeness of the idempotent invoice create — end to end over real
sockets against the sandbox, with its fault switches (FakeSleep makes retries instant).

A write that landed is never reported as a definite failure: when the answer cannot be read, or reading the
result back fails, the caller gets success or `WriteOutcomeUnknown` naming the business key.
"""

from __future__ import annotations

import datetime as _dt
import zlib
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
from accounting_bridge.adapters.runmyaccounts import Payable, Vendor
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge import InvoiceLine, TaxLine

DAY = _dt.date(2024, 5, 2)
PDF = b"%PDF-1.4\n% write outcomes\n%%EOF\n"
#: more failing reads than the transport makes attempts (1 + max_retries)
ALL_READS_FAIL = [500] * 8


def invoice(number: str = "R-W1") -> ab.Invoice:
    return ab.Invoice(
        number=number,
        customer_number="K-1001",
        issue_date=DAY,
        due_date=DAY + _dt.timedelta(days=30),
        lines=[
            InvoiceLine(description="Schulung", unit_price=D("1250.00"), account="3400"),
            InvoiceLine(description="Reisezeit", unit_price=D("200.00"), account="3400"),
        ],
        tax_lines=[TaxLine(account="2201", amount=D("117.45"))],
        title="Schulung Mai",
        notes="Zahlbar in 30 Tagen",
    )


def parts_invoice(number: str = "R-P1") -> ab.Invoice:
    return ab.Invoice(
        number=number,
        customer_number="K-2040",
        issue_date=DAY,
        due_date=DAY + _dt.timedelta(days=30),
        lines=[InvoiceLine(description="Versand Express", item_number="VERSAND", unit_price=D("12.50"),
                           quantity=D("2"), unit="Stk", note="Paket 1")],
    )  # fmt: skip


def posts(sandbox: RmaSandbox, suffix: str) -> int:
    return sum(1 for method, path in sandbox.requests if method == "POST" and path.endswith(suffix))


# --- #8.7: a write that landed is success or WriteOutcomeUnknown ------------------------------------------------


async def test_invoice_whose_read_back_fails_is_unknown_not_server_error(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.fail_reads_after_commit = list(ALL_READS_FAIL)
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await ledger.invoices.create(invoice())
        assert info.value.reference == "R-W1"
        assert list(sandbox.state.invoices) == ["R-W1"]  # it did land


async def test_invoice_refused_as_duplicate_whose_re_lookup_fails_is_unknown(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(invoice())
        # the pre-check misses it (404), the POST is refused as a duplicate (400), every re-lookup fails
        sandbox.faults.fail_next(404)
        sandbox.faults.fail_next(400)
        sandbox.faults.fail_next(500, count=len(ALL_READS_FAIL))
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await ledger.invoices.create(invoice())
        assert info.value.reference == "R-W1"


async def test_invoice_refused_as_duplicate_and_found_identical_is_returned(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(invoice())
        sandbox.faults.fail_next(404)
        sandbox.faults.fail_next(400)
        again = await ledger.invoices.create(invoice())
        assert again.number == "R-W1" and ledger.adapter.last_create_was_present  # type: ignore[attr-defined]


async def test_customer_whose_read_back_fails_is_unknown(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.fail_reads_after_commit = list(ALL_READS_FAIL)
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await ledger.customers.upsert(ab.Customer(number="K-77", name="Velo Huber"))
        assert info.value.reference == "K-77"
        assert sandbox.state.customers["K-77"]["name"] == "Velo Huber"


async def test_payment_with_unreadable_answer_is_read_back(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(invoice())
        sandbox.faults.garble_after_commit = 1  # booked, then answered 200 with a body that is not JSON
        payment = await ledger.payments.create(ab.Payment(invoice_number="R-W1", date=DAY, amount=D("100.00")))
        assert sandbox.faults.garble_after_commit == 0
        assert payment.amount == D("100.00") and payment.id == sandbox.state.payments[0]["id"]
        assert len(sandbox.state.payments) == 1


async def test_payment_with_unreadable_answer_and_failing_read_back_is_unknown(
    sandbox: RmaSandbox, connect: Any
) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(invoice())
        sandbox.faults.garble_after_commit = 1
        sandbox.faults.fail_reads_after_commit = list(ALL_READS_FAIL)
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await ledger.payments.create(ab.Payment(invoice_number="R-W1", date=DAY, amount=D("100.00")))
        assert info.value.reference == "R-W1"
        assert len(sandbox.state.payments) == 1


async def test_payment_confirmed_by_lookup_whose_read_back_fails_is_unknown(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(invoice())
        sandbox.faults.drop_after_commit()
        sandbox.faults.fail_reads_after_commit = list(ALL_READS_FAIL)
        sandbox.faults.reads_before_failing = 1  # the transport's lookup sees the payment; the read-back fails
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await ledger.payments.create(ab.Payment(invoice_number="R-W1", date=DAY, amount=D("100.00")))
        assert info.value.reference == "R-W1"
        assert sandbox.faults.pending("drop") == 0 and len(sandbox.state.payments) == 1


async def test_receipt_with_unreadable_answer_counts_as_uploaded(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.garble_after_commit = 1
        ref = await ledger.documents.upload(ab.Document(filename="q.pdf", content=PDF, content_type="application/pdf"))
        assert ref.id == f"crc32:{zlib.crc32(PDF)}" and ref.filename == "q.pdf"
        assert ref.raw is not None and ref.raw["answer_unreadable"] is True
        assert len(sandbox.state.belege) == 1 and posts(sandbox, "/belege") == 1


async def test_registration_with_unreadable_answer_is_booked_without_id(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.garble_after_commit = 1
        registration = ab.Registration(
            date=DAY, description="Miete Mai", reference="MIETE-05",
            lines=[ab.PostingLine(account="6500", amount=D("900.00")),
                   ab.PostingLine(account="1090", amount=D("-900.00"))],
        )  # fmt: skip
        ref = await ledger.registrations.submit(registration)
        assert ref.reference == "MIETE-05" and ref.id is None
        assert ref.raw is not None and ref.raw["answer_unreadable"] is True
        assert [entry["reference"] for entry in sandbox.state.gl] == ["MIETE-05"]


async def test_payable_whose_read_back_fails_is_unknown(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        adapter: Any = ledger.adapter
        payable = Payable(
            number="KR-9", vendor=Vendor(number="L-66", name="Papeterie Muster AG"), issue_date=DAY,
            lines=(InvoiceLine(description="Papier", item_number="BUERO", unit_price=D("80.00")),),
        )  # fmt: skip
        sandbox.faults.fail_reads_after_commit = list(ALL_READS_FAIL)
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await adapter.create_payable(payable)
        assert info.value.reference == "KR-9" and "KR-9" in sandbox.state.payables


async def test_vendor_whose_read_back_fails_is_unknown(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        adapter: Any = ledger.adapter
        sandbox.faults.fail_reads_after_commit = list(ALL_READS_FAIL)
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await adapter.upsert_vendor(Vendor(number="L-70", name="Druckerei Zeller"))
        assert info.value.reference == "L-70" and "L-70" in sandbox.state.vendors


# --- #8.9: the idempotent create compares everything that was sent ----------------------------------------------


def _line(index: int, **changes: Any) -> Callable[[ab.Invoice], ab.Invoice]:
    def change(inv: ab.Invoice) -> ab.Invoice:
        lines = list(inv.lines)
        lines[index] = attrs.evolve(lines[index], **changes)
        return attrs.evolve(inv, lines=lines)

    return change


def _header(**changes: Any) -> Callable[[ab.Invoice], ab.Invoice]:
    return lambda inv: attrs.evolve(inv, **changes)


TRANSACTION_CHANGES = {
    "line description": _line(1, description="Reisespesen"),
    "line amount": _line(1, unit_price=D("210.00")),
    "line account": _line(1, account="3200"),
    "tax amount": _header(tax_lines=[TaxLine(account="2201", amount=D("117.50"))]),
    "tax account": _header(tax_lines=[TaxLine(account="2202", amount=D("117.45"))]),
    "one line less": lambda inv: attrs.evolve(inv, lines=inv.lines[:1]),
    "issue date": _header(issue_date=DAY + _dt.timedelta(days=1)),
    "due date": _header(due_date=DAY + _dt.timedelta(days=10)),
    "customer": _header(customer_number="K-2040"),
    "currency": _header(currency="EUR"),
    "prices include tax": _header(prices_include_tax=True),
    "title": _header(title="Schulung Juni"),
    "notes": _header(notes="Zahlbar in 10 Tagen"),
    "internal notes": _header(internal_notes="intern"),
    "order number": _header(order_number="B-7"),
    "payment reference": _header(payment_reference="000000000000000000000004711"),
}

PARTS_CHANGES = {
    "description": _line(0, description="Versand Normal"),
    "quantity": _line(0, quantity=D("3")),
    "price": _line(0, unit_price=D("13.50")),
    "discount": _line(0, discount_percent=D("5")),
    "unit": _line(0, unit="Pkt"),
    "note": _line(0, note="Paket 2"),
    "account": _line(0, account="3400"),
}


@pytest.mark.parametrize("change", list(TRANSACTION_CHANGES.values()), ids=list(TRANSACTION_CHANGES))
async def test_same_number_other_content_is_conflict(
    ledger: ab.Ledger, sandbox: RmaSandbox, change: Callable[[ab.Invoice], ab.Invoice]
) -> None:
    original = invoice()
    await ledger.invoices.create(original)
    with pytest.raises(ab.Conflict):
        await ledger.invoices.create(change(original))
    assert posts(sandbox, "/invoices") == 1


@pytest.mark.parametrize("change", list(PARTS_CHANGES.values()), ids=list(PARTS_CHANGES))
async def test_same_number_other_position_is_conflict(
    ledger: ab.Ledger, sandbox: RmaSandbox, change: Callable[[ab.Invoice], ab.Invoice]
) -> None:
    original = parts_invoice()
    await ledger.invoices.create(original)
    with pytest.raises(ab.Conflict):
        await ledger.invoices.create(change(original))
    assert posts(sandbox, "/invoices") == 1


@pytest.mark.parametrize("make", [invoice, parts_invoice], ids=["transactions", "parts"])
async def test_identical_resend_returns_the_stored_invoice_without_a_second_write(
    ledger: ab.Ledger, sandbox: RmaSandbox, make: Callable[[], ab.Invoice]
) -> None:
    created = await ledger.invoices.create(make())
    again = await ledger.invoices.create(make())
    assert ledger.adapter.last_create_was_present  # type: ignore[attr-defined]
    assert again.number == created.number and again.total == created.total and again.lines == created.lines
    assert posts(sandbox, "/invoices") == 1


async def test_conflict_names_the_differing_fields(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(invoice())
        with pytest.raises(ab.Conflict) as info:
            await ledger.invoices.create(TRANSACTION_CHANGES["line description"](invoice()))
        assert "incomeentries" in str(info.value)


# --- texts the wire reshapes (XML: CRLF -> LF, ends stripped) are the same texts ---------------------------------

RESHAPED_TEXTS: dict[str, Callable[[], ab.Invoice]] = {
    "crlf notes": lambda: attrs.evolve(invoice(), notes="Zahlbar in 30 Tagen,\r\nbesten Dank"),
    "lone cr notes": lambda: attrs.evolve(invoice(), notes="Zahlbar\rsofort"),
    "trailing spaces in a line description": lambda: _line(1, description="Reisezeit  ")(invoice()),
    "leading space in the title": lambda: attrs.evolve(invoice(), title=" Schulung Mai"),
    "blank internal notes": lambda: attrs.evolve(invoice(), internal_notes="  "),
    "position texts with spaces and crlf": lambda: _line(0, description=" Versand Express", unit="Stk ",
                                                          note="Paket 1\r\nzerbrechlich ")(parts_invoice()),
}  # fmt: skip


@pytest.mark.parametrize("make", list(RESHAPED_TEXTS.values()), ids=list(RESHAPED_TEXTS))
async def test_identical_resend_with_reshaped_texts_returns_the_stored_invoice(
    ledger: ab.Ledger, sandbox: RmaSandbox, make: Callable[[], ab.Invoice]
) -> None:
    created = await ledger.invoices.create(make())
    again = await ledger.invoices.create(make())
    assert ledger.adapter.last_create_was_present  # type: ignore[attr-defined]
    assert again.number == created.number and again.lines == created.lines
    assert posts(sandbox, "/invoices") == 1


@pytest.mark.parametrize("make", list(RESHAPED_TEXTS.values()), ids=list(RESHAPED_TEXTS))
async def test_own_invoice_found_after_a_lost_answer_is_success(
    ledger: ab.Ledger, sandbox: RmaSandbox, make: Callable[[], ab.Invoice]
) -> None:
    sandbox.faults.drop_after_commit()
    created = await ledger.invoices.create(make())
    assert created.number == make().number and list(sandbox.state.invoices) == [created.number]
    assert posts(sandbox, "/invoices") == 1


async def test_other_invoice_found_after_a_lost_answer_is_unknown_not_conflict(
    ledger: ab.Ledger, sandbox: RmaSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = sandbox._after_commit

    def someone_else_stored_it(request: Any) -> Any:
        sandbox.state.invoices["R-W1"]["notes"] = "Zahlbar sofort"
        return commit(request)

    monkeypatch.setattr(sandbox, "_after_commit", someone_else_stored_it)
    sandbox.faults.drop_after_commit()
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.invoices.create(invoice())
    assert info.value.reference == "R-W1" and "notes" in str(info.value)
    assert posts(sandbox, "/invoices") == 1


async def test_other_text_beside_reshaped_whitespace_is_still_conflict(ledger: ab.Ledger) -> None:
    await ledger.invoices.create(attrs.evolve(invoice(), notes="Zahlbar in 30 Tagen\r\n"))
    with pytest.raises(ab.Conflict) as info:
        await ledger.invoices.create(attrs.evolve(invoice(), notes="Zahlbar in 10 Tagen\r\n"))
    assert "notes" in str(info.value)


def payable(**changes: Any) -> Payable:
    base = Payable(
        number="KR-1", vendor=Vendor(number="L-66", name="Papeterie Muster AG"), issue_date=DAY,
        due_date=DAY + _dt.timedelta(days=30), title="Büromaterial",
        lines=(InvoiceLine(description="Toner", item_number="BUERO", unit_price=D("259.40"), account="6500"),
               InvoiceLine(description="Papier", item_number="BUERO", unit_price=D("40.60"), account="6500")),
    )  # fmt: skip
    return attrs.evolve(base, **changes)


def _payable_line(index: int, **changes: Any) -> Callable[[Payable], Payable]:
    def change(p: Payable) -> Payable:
        lines = list(p.lines)
        lines[index] = attrs.evolve(lines[index], **changes)
        return attrs.evolve(p, lines=tuple(lines))

    return change


PAYABLE_CHANGES: dict[str, Callable[[Payable], Payable]] = {
    "line description": _payable_line(1, description="Couverts"),
    "amounts moved between lines": lambda p: attrs.evolve(p, lines=(
        attrs.evolve(p.lines[0], unit_price=D("240.60")), attrs.evolve(p.lines[1], unit_price=D("59.40")))),
    "vendor": lambda p: attrs.evolve(p, vendor=Vendor(number="L-70", name="Druckerei Zeller")),
    "issue date": lambda p: attrs.evolve(p, issue_date=DAY + _dt.timedelta(days=1)),
    "title": lambda p: attrs.evolve(p, title="Druckerpatronen"),
}  # fmt: skip


@pytest.mark.parametrize("change", list(PAYABLE_CHANGES.values()), ids=list(PAYABLE_CHANGES))
async def test_payable_same_number_other_content_is_conflict(
    sandbox: RmaSandbox, connect: Any, change: Callable[[Payable], Payable]
) -> None:
    async with connect(sandbox) as ledger:
        adapter: Any = ledger.adapter
        await adapter.create_payable(payable())
        with pytest.raises(ab.Conflict):
            await adapter.create_payable(change(payable()))
        assert posts(sandbox, "/payables") == 1


async def test_identical_payable_returns_the_stored_one_without_a_second_write(
    sandbox: RmaSandbox, connect: Any
) -> None:
    async with connect(sandbox) as ledger:
        adapter: Any = ledger.adapter
        created = await adapter.create_payable(payable())
        again = await adapter.create_payable(payable())
        assert again.number == created.number and again.lines == created.lines
        assert posts(sandbox, "/payables") == 1


@pytest.mark.parametrize("wire_format", ["json", "xml"])
async def test_identical_payable_with_reshaped_texts_returns_the_stored_one(
    sandbox: RmaSandbox, connect: Any, wire_format: str
) -> None:
    reshaped = attrs.evolve(payable(), title=" Büromaterial ", lines=(
        attrs.evolve(payable().lines[0], description="Toner  "), payable().lines[1]))  # fmt: skip
    async with connect(sandbox, wire_format) as ledger:
        adapter: Any = ledger.adapter
        await adapter.create_payable(reshaped)
        again = await adapter.create_payable(reshaped)
        assert again.number == "KR-1"
        assert posts(sandbox, "/payables") == 1
