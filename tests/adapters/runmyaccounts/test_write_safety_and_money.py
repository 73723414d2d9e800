"""Write safety of receipts and GL entries, the money rounding rule, and secrets that need URL encoding —
end to end over real sockets against the sandbox (plus the pure encoder for the rounding rule)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import zlib
from decimal import Decimal as D
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlencode

import pytest
from accounting_bridge.adapters.runmyaccounts import wire
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox, as_list
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge import InvoiceLine, TaxLine
from accounting_bridge.testing import FakeSleep

from .conftest import TODAY

DAY = _dt.date(2024, 5, 2)
PDF = b"%PDF-1.4\n% payroll slip\n%%EOF\n"


def posts(sandbox: RmaSandbox, suffix: str) -> int:
    return sum(1 for method, path in sandbox.requests if method == "POST" and path.endswith(suffix))


def payroll(reference: str | None = "LOHN-2024-05", attachments: tuple[ab.Document, ...] = ()) -> ab.Registration:
    return ab.Registration(
        date=DAY, description="Lohn Mai", reference=reference,
        lines=[ab.PostingLine(account="6500", amount=D("800.00")), ab.PostingLine(account="1090", amount=D("-800.00"))],
        attachments=attachments,
    )  # fmt: skip


def slip(content: bytes = PDF) -> ab.Document:
    return ab.Document(filename="slip.pdf", content=content, content_type="application/pdf")


# --- receipts: a retry of our own upload that meets RMA's duplicate 409 ------------------------------------------


async def test_gl_with_attachment_after_lost_upload_answer(ledger: ab.Ledger, sandbox: RmaSandbox) -> None:
    sandbox.faults.drop_after_commit()  # the receipt is stored, the answer to the upload is lost
    ref = await ledger.registrations.submit(payroll(attachments=(slip(),)))
    assert sandbox.faults.pending("drop") == 0  # the fault really hit the upload
    assert posts(sandbox, "/belege") == 2  # the upload was resent once and met the duplicate 409
    assert len(sandbox.state.belege) == 1
    assert [entry["reference"] for entry in sandbox.state.gl] == ["LOHN-2024-05"]
    assert ref.id and ref.reference == "LOHN-2024-05"
    # RMA has no receipt listing: the receipt is reported by its CRC32, the key RMA deduplicates by.
    assert ref.raw is not None and ref.raw["attachments"] == [f"crc32:{zlib.crc32(PDF)}"]


async def test_upload_with_500_after_commit_counts_as_uploaded(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.fail_after_commit = [500]
        ref = await ledger.documents.upload(slip())
        assert ref.id == f"crc32:{zlib.crc32(PDF)}" and ref.filename == "slip.pdf"
        assert ref.raw is not None and ref.raw["already_uploaded"] is True
        beleg = await ledger.adapter.upload_beleg(slip(b"%PDF-1.4\n% other\n%%EOF\n"))  # type: ignore[attr-defined]
        assert beleg.already_uploaded is False and not beleg.id.startswith("crc32:")
        assert len(sandbox.state.belege) == 2


async def test_upload_lost_before_commit_is_resent_and_stored(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        sandbox.faults.fail_next(502)  # answered before anything was stored
        ref = await ledger.documents.upload(slip())
        assert ref.raw is not None and ref.raw.get("already_uploaded") is not True
        assert ref.id == sandbox.state.belege[zlib.crc32(PDF)]["id"]


async def test_409_on_a_first_upload_stays_conflict(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.documents.upload(slip())  # someone uploaded it before
        with pytest.raises(ab.Conflict) as conflict:
            await ledger.registrations.submit(payroll(attachments=(slip(),)))
        assert "journal entry 'LOHN-2024-05' was not booked" in str(conflict.value)  # the entry, not only the PDF
        assert "'slip.pdf'" in str(conflict.value)
        assert sandbox.state.gl == []  # nothing booked without its receipt


# --- GL: the lookup only counts GL lines -------------------------------------------------------------------------


async def test_lost_gl_post_is_not_taken_for_an_ar_line_with_the_same_reference(ledger: ab.Ledger,
                                                                                sandbox: RmaSandbox) -> None:  # fmt: skip
    invoice = ab.Invoice(number="REF-77", customer_number="K-1001", issue_date=DAY, due_date=DAY,
                         lines=[InvoiceLine(description="Schulung", unit_price=D("100.00"), account="3400")])  # fmt: skip
    await ledger.invoices.create(invoice)  # AR ledger lines of that day carry reference REF-77
    sandbox.faults.fail_next(500)  # the GL post fails without being stored
    await ledger.registrations.submit(payroll(reference="REF-77"))
    assert [entry["reference"] for entry in sandbox.state.gl] == ["REF-77"]
    lines = await ledger.adapter.account_transactions("x", since=DAY, until=DAY)  # type: ignore[attr-defined]
    assert sorted((line.module, line.accno) for line in lines if line.module == "gl") == [
        ("gl", "1090"),
        ("gl", "6500"),
    ]


# --- money: one rounding rule -----------------------------------------------------------------------------------


def sub_cent_invoice(number: str = "R-SC", kind: ab.InvoiceKind = ab.InvoiceKind.INVOICE) -> ab.Invoice:
    return ab.Invoice(
        number=number, customer_number="K-001", issue_date=DAY, due_date=DAY + _dt.timedelta(days=30), kind=kind,
        lines=[InvoiceLine(description="Stunden", quantity=D("1.5"), unit_price=D("19.95"), account="3400"),  # 29.925
               InvoiceLine(description="Kopien", quantity=D("3"), unit_price=D("0.335"), account="3400"),  # 1.005
               InvoiceLine(description="Porto", quantity=D("0.5"), unit_price=D("0.25"), account="3400")],  # 0.125
        tax_lines=[TaxLine(account="2201", amount=D("2.50"))],
    )  # fmt: skip


def test_income_entries_are_rounded_per_line_half_up() -> None:
    tree = wire.encode_invoice(sub_cent_invoice())
    assert [e["amount"] for e in tree["incomeentries"]["incomeentry"]] == ["29.93", "1.01", "0.13"]
    credit = wire.encode_invoice(sub_cent_invoice(kind=ab.InvoiceKind.CREDIT_NOTE))
    assert [e["amount"] for e in credit["incomeentries"]["incomeentry"]] == ["-29.93", "-1.01", "-0.13"]


async def test_invoice_total_is_the_sum_of_rounded_lines_and_tax(ledger: ab.Ledger, sandbox: RmaSandbox) -> None:
    created = await ledger.invoices.create(sub_cent_invoice())
    stored = as_list(sandbox.state.invoices["R-SC"]["incomeentries"]["incomeentry"])
    assert [D(e["amount"]) for e in stored] == [D("29.93"), D("1.01"), D("0.13")]
    assert created.net_total == D("31.07")
    assert created.total == D("33.57")  # 29.93 + 1.01 + 0.13 + 2.50
    again = await ledger.invoices.create(sub_cent_invoice())  # the same content is recognised after rounding
    assert again.total == created.total and ledger.adapter.last_create_was_present  # type: ignore[attr-defined]


async def test_amounts_below_a_cent_are_refused_before_any_io(ledger: ab.Ledger, sandbox: RmaSandbox) -> None:
    registration = ab.Registration(
        date=DAY, description="Zins", reference="Z-1",
        lines=[ab.PostingLine(account="6500", amount=D("100.00")), ab.PostingLine(account="6500", amount=D("0.005")),
               ab.PostingLine(account="1090", amount=D("-100.005"))],
    )  # fmt: skip
    with pytest.raises(ab.ValidationError) as gl:
        await ledger.registrations.submit(registration)
    assert [e.path for e in gl.value.errors] == ["lines[1].amount", "lines[2].amount"]
    with pytest.raises(ab.ValidationError) as payment:
        await ledger.payments.create(ab.Payment(invoice_number="R-1", date=DAY, amount=D("10.005")))
    assert [e.path for e in payment.value.errors] == ["amount"]
    with pytest.raises(ab.ValidationError) as payable_payment:  # the adapter-specific path checks too
        await ledger.adapter.create_payable_payment(  # type: ignore[attr-defined]
            ab.Payment(invoice_number="E-1", date=DAY, amount=D("-1.001"))
        )
    assert [e.path for e in payable_payment.value.errors] == ["amount"]
    taxed = ab.Invoice(number="R-T", customer_number="K-001", issue_date=DAY, due_date=DAY,
                       lines=[InvoiceLine(description="x", unit_price=D("10"), account="3400")],
                       tax_lines=[TaxLine(account="2201", amount=D("0.815"))])  # fmt: skip
    with pytest.raises(ab.ValidationError) as tax:
        await ledger.invoices.create(taxed)
    assert [e.path for e in tax.value.errors] == ["tax_lines[0].amount"]
    assert sandbox.requests == []
    # Trailing zeros are not extra precision.
    ledger.adapter.validate(ab.Payment(invoice_number="R-1", date=DAY, amount=D("10.500")))  # type: ignore[attr-defined]


# --- secrets that change under URL encoding ---------------------------------------------------------------------

ODD_KEY = "k+y/ab=cd%20ef"
ODD_WRONG_KEY = "wr+ng/key=%41x"


def spellings(secret: str) -> set[str]:
    """The secret and every form URL handling may turn it into."""
    encoded_query = urlencode({"api_key": secret}).split("=", 1)[1]
    return {
        secret, quote(secret, safe=""), quote(secret), quote_plus(secret), quote_plus(secret, safe="/"),
        encoded_query, unquote(secret), unquote_plus(secret),
    }  # fmt: skip


class EchoingSandbox(RmaSandbox):
    """Answers an unknown invoice like a servlet container's error page: with the request URI as sent."""

    async def get_invoice(self, request: web.Request) -> web.Response:
        if request.match_info["number"] in self.state.invoices:
            return await super().get_invoice(request)
        return web.Response(status=404, text=f"Not Found: {request.raw_path}", content_type="text/plain")


@pytest.mark.parametrize("mode", ["query", "bearer", "header"])
async def test_api_key_with_url_encoded_characters_never_leaks(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's too
    texts: list[str] = []
    async with EchoingSandbox(mandant="demo", api_key=ODD_KEY, today=lambda: TODAY) as sandbox:
        settings: dict[str, Any] = {"tenant": "demo", "base_url": sandbox.base_url, "auth": mode}
        async with ab.connect("runmyaccounts", api_key=ODD_KEY, **settings) as ledger:
            ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
            texts += [repr(ledger), repr(ledger.adapter), repr(ledger.adapter.settings),  # type: ignore[attr-defined]
                      repr(ledger.adapter.transport)]  # type: ignore[attr-defined]  # fmt: skip
            assert (await ledger.customers.get("K-001")).number == "K-001"  # the odd key really authenticates
            with pytest.raises(ab.NotFound) as missing:  # the error page echoes the request URI
                await ledger.invoices.get("R-404")
            texts += [str(missing.value), repr(missing.value.detail)]
            sandbox.faults.drop_after_commit(count=10)  # every attempt of an idempotent write is cut after the commit
            with pytest.raises(ab.TransportError) as dropped:
                await ledger.customers.upsert(ab.Customer(number="K-77", name="Odd Key AG"))
            assert sandbox.faults.pending("drop") == 6  # four attempts, all dropped
            texts.append(str(dropped.value))
            sandbox.faults.clear()
            sandbox.faults.fail_next(502)  # an ambiguous write without a lookup (GL entry without reference)
            with pytest.raises(ab.WriteOutcomeUnknown) as unknown:
                await ledger.registrations.submit(payroll(reference=None))
            texts.append(str(unknown.value))
            sandbox.faults.fail_next(500, count=10)
            with pytest.raises(ab.ServerError) as server:
                await ledger.customers.get("K-001")
            texts.append(str(server.value))
            sandbox.faults.clear()
            sandbox.faults.latency = 0.3
            async with ab.connect("runmyaccounts", api_key=ODD_KEY, timeout=0.05, max_retries=0, **settings) as slow:
                with pytest.raises(ab.TransportError) as timeout:
                    await slow.customers.get("K-001")
                texts.append(str(timeout.value))
            sandbox.faults.latency = 0.0
        async with ab.connect("runmyaccounts", api_key=ODD_WRONG_KEY, **settings) as wrong:
            with pytest.raises(ab.PermissionDenied) as denied:
                await wrong.customers.get("K-001")
            texts.append(str(denied.value))
            sandbox.api_key = ODD_WRONG_KEY
            with pytest.raises(ab.NotFound) as echoed:
                await wrong.invoices.get("R-404")
            texts.append(str(echoed.value))
    if mode == "query":
        assert "api_key=***" in caplog.text  # logged, redacted
    for secret in (ODD_KEY, ODD_WRONG_KEY):
        for form in spellings(secret):
            for where, text in [("DEBUG log", caplog.text), *(("error or repr", t) for t in texts)]:
                assert form not in text, f"{form!r} leaked into {where}: {text[:300]!r}"


# --- a payment whose commit outlives the client timeout ---------------------------------------------------------


class SlowCommitSandbox(RmaSandbox):
    """Commits the next payment 0.5 s after it has fully arrived (the client gave up at 0.3 s)."""

    slow = False

    async def create_payment(self, request: Any) -> Any:
        if self.slow:
            self.slow = False
            await request.read()
            await asyncio.sleep(0.5)
        return await super().create_payment(request)


async def test_slow_payment_commit_after_client_timeout_is_not_duplicated(connect: Any) -> None:
    """Exactly one payment whatever the client saw: after the client timeout the transport asks the lookup again
    over the settle time (real sleeping here: the backend needs the time) instead of resending at once."""
    async with (
        SlowCommitSandbox(mandant="demo", api_key="rma-secret-key-4711", today=lambda: TODAY) as sandbox,
        connect(sandbox, timeout=0.3, write_settle_delay=0.3) as ledger,
    ):
        ledger.adapter.transport.sleep = asyncio.sleep
        invoice = ab.Invoice(number="R-P", customer_number="K-001", issue_date=DAY, due_date=DAY,
                             lines=[InvoiceLine(description="x", unit_price=D("100"), account="3400")])  # fmt: skip
        await ledger.invoices.create(invoice)
        sandbox.slow = True
        outcome: ab.Payment | ab.WriteOutcomeUnknown
        try:
            outcome = await ledger.payments.create(ab.Payment(invoice_number="R-P", date=DAY, amount=D("50.00")))
        except ab.WriteOutcomeUnknown as exc:
            outcome = exc
        await asyncio.sleep(0.6)  # let the slow commit finish
        assert len(sandbox.state.payments) == 1, f"{posts(sandbox, '/payments')} POSTs stored {sandbox.state.payments}"
        if isinstance(outcome, ab.Payment):
            assert outcome.amount == D("50.00") and outcome.id == sandbox.state.payments[0]["id"]
        else:
            assert outcome.reference == "R-P"
