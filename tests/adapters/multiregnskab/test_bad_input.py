"""Bad input never leaves the process (issue #8.3, #8.5, #8.6), for the Public Client and the System-to-System API:
`ValidationError` naming the field, and no request reaches the sandbox (not even the login).

Registrations send their `reference` as the ``X-MultiRegnskabTraceId`` header: CR/LF there was a header injection
that aiohttp answered with a bare `ValueError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab
from accounting_bridge.testing import drive

from .conftest import Connector

DAY = dt.date(2026, 11, 30)
PDF = b"%PDF-1.4\n%%EOF\n"
ADDRESS = ab.Address(street="Vestergade 1", postcode="8000", city="Aarhus", country="DK")


def posting(amount: str, account: str = "5820", **changes: Any) -> ab.PostingLine:
    return ab.PostingLine(account=account, amount=D(amount), **changes)


def document(**changes: Any) -> ab.Document:
    return ab.Document(**{"filename": "bilag.pdf", "content": PDF, "content_type": "application/pdf", **changes})


def registration(**changes: Any) -> ab.Registration:
    values: dict[str, Any] = {
        "date": DAY,
        "description": "Taxi",
        "lines": [posting("-100.00"), posting("100.00", "3620")],
        "reference": "ref-1",
    }
    values.update(changes)
    return ab.Registration(**values)


def customer(**changes: Any) -> ab.Customer:
    return ab.Customer(**{"number": "K-1", "name": "Bager", "address": ADDRESS, **changes})


def bank(**changes: Any) -> ab.BankTransaction:
    values: dict[str, Any] = {"account": "1", "date": DAY, "amount": D("-197.00"), "text": "Gebyr", **changes}
    return ab.BankTransaction(**values)


Call = Callable[[ab.Ledger], Any]

#: registrations and customers: the schemas both APIs share
SHARED: list[tuple[str, Call, str]] = [
    ("reference-crlf", lambda led: led.registrations.submit(registration(reference="ref\r\nX-Injected: 1")),
     "reference"),
    ("reference-lf", lambda led: led.registrations.submit(registration(reference="ref\n")), "reference"),
    ("reference-nul", lambda led: led.registrations.submit(registration(reference="ref\x00")), "reference"),
    ("reference-surrogate", lambda led: led.registrations.submit(registration(reference="ref\ud800")), "reference"),
    ("description-surrogate", lambda led: led.registrations.submit(registration(description="x\ud800")),
     "description"),
    ("description-nul", lambda led: led.registrations.submit(registration(description="a\x00b")), "description"),
    ("account-tab", lambda led: led.registrations.submit(
        registration(lines=[posting("-1", "58\t20"), posting("1", "3620")])), "account"),
    ("unbalanced", lambda led: led.registrations.submit(
        registration(lines=[posting("-100.00"), posting("99.99", "3620")])), "lines"),
    ("three-decimals", lambda led: led.registrations.submit(
        registration(lines=[posting("-1.005"), posting("1.005", "3620")])), "lines[0].amount"),
    ("float-amount", lambda led: led.registrations.submit(
        registration(lines=[posting("-1"), ab.PostingLine(account="3620", amount=1.0)])), "amount"),
    ("nan-amount", lambda led: led.registrations.submit(
        registration(lines=[posting("-1"), ab.PostingLine(account="3620", amount="NaN")])), "amount"),
    ("infinite-amount", lambda led: led.registrations.submit(
        registration(lines=[posting("-1"), ab.PostingLine(account="3620", amount=D("Infinity"))])), "amount"),
    ("line-text", lambda led: led.registrations.submit(
        registration(lines=[posting("-1", text="x"), posting("1", "3620")])), "lines[0].text"),
    ("currency", lambda led: led.registrations.submit(registration(currency="EUR")), "currency"),
    ("four-attachments", lambda led: led.registrations.submit(registration(attachments=[document()] * 4)),
     "attachments"),
    ("filename-251", lambda led: led.registrations.submit(
        registration(attachments=[document(filename="f" * 247 + ".pdf")])), "attachments[0].filename"),
    ("filename-crlf", lambda led: led.registrations.submit(
        registration(attachments=[document(filename="a\r\n.pdf")])), "filename"),
    ("content-type-lf", lambda led: led.registrations.submit(
        registration(attachments=[document(content_type="application/pdf\nX: y")])), "content_type"),
    ("not-a-registration", lambda led: led.registrations.submit({"description": "x"}), "registration"),
    ("customer-name-151", lambda led: led.customers.upsert(customer(name="N" * 151)), "name"),
    ("customer-number-21", lambda led: led.customers.upsert(customer(number="K" * 21)), "number"),
    ("customer-number-crlf", lambda led: led.customers.upsert(customer(number="K\r\n1")), "number"),
    ("customer-city-surrogate", lambda led: led.customers.upsert(
        customer(address=ab.Address(street="Vej 1", postcode="8000", city="\ud800", country="DK"))), "city"),
    ("customer-without-address", lambda led: led.customers.upsert(customer(address=None)), "address.street"),
    ("customer-get-crlf", lambda led: led.customers.get("K-1\r\nX: y"), "number"),
    ("customer-get-blank", lambda led: led.customers.get(" "), "number"),
]  # fmt: skip

PUBLIC: list[tuple[str, Call, str]] = [
    ("document-dotdot", lambda led: led.documents.get(".."), "document_id"),
    ("document-slash", lambda led: led.documents.get("1/2"), "document_id"),
    ("document-query", lambda led: led.documents.get("1?x=2"), "document_id"),
    ("document-other-digits", lambda led: led.documents.get("٣"), "document_id"),
    ("document-empty", lambda led: led.documents.get(""), "document_id"),
    ("delete-dot", lambda led: led.documents.delete("."), "document_id"),
    ("delete-percent", lambda led: led.documents.delete("%31"), "document_id"),
    ("units-traversal", lambda led: led.adapter.units_of_measure("../companies"), "language"),
    ("units-query", lambda led: led.adapter.units_of_measure("DA?x=1"), "language"),
    ("upload-description-251", lambda led: led.documents.upload(document(description="d" * 251)), "description"),
    ("upload-description-nul", lambda led: led.documents.upload(document(description="\x00")), "description"),
    ("invoice-title-101", lambda led: led.invoices.create(ab.Invoice(
        status=ab.InvoiceStatus.DRAFT,
        number="F-1", customer_number="K-1", issue_date=DAY, title="T" * 101,
        lines=[ab.InvoiceLine(description="x", unit_price=D(1))])), "title"),
    ("invoice-line-101", lambda led: led.invoices.create(ab.Invoice(
        status=ab.InvoiceStatus.DRAFT,
        number="F-1", customer_number="K-1", issue_date=DAY,
        lines=[ab.InvoiceLine(description="x" * 101, unit_price=D(1))])), "lines[0].description"),
    ("invoice-price-float", lambda led: led.invoices.create(ab.Invoice(
        status=ab.InvoiceStatus.DRAFT,
        number="F-1", customer_number="K-1", issue_date=DAY,
        lines=[ab.InvoiceLine(description="x", unit_price=9.99)])), "unit_price"),
]  # fmt: skip

S2S: list[tuple[str, Call, str]] = [
    ("bank-account-dotdot", lambda led: led.bank_transactions.submit([bank(account="..")]),
     "transactions[0].account"),
    ("bank-account-slash", lambda led: led.bank_transactions.submit([bank(account="1/2")]),
     "transactions[0].account"),
    ("bank-account-other-digits", lambda led: led.bank_transactions.submit([bank(account="١")]),
     "transactions[0].account"),
    ("bank-text-missing", lambda led: led.bank_transactions.submit([bank(text=None)]), "transactions[0].text"),
    ("bank-three-decimals", lambda led: led.bank_transactions.submit([bank(amount=D("1.001"))]),
     "transactions[0].amount"),
    ("bank-text-nul", lambda led: led.bank_transactions.submit([bank(text="a\x00")]), "text"),
    ("bank-reference-crlf", lambda led: led.bank_transactions.submit([bank(reference="r\r\n")]), "reference"),
    ("bank-float", lambda led: led.bank_transactions.submit([bank(amount=-197.0)]), "amount"),
    ("bank-not-a-model", lambda led: led.bank_transactions.submit(["x"]), "transactions[0]"),
]  # fmt: skip


async def _refused(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox, call: Call, field: str) -> None:
    async with ledger:
        with pytest.raises(ab.ValidationError) as info:
            await drive(call(ledger))
        assert field in info.value.fields, info.value
        assert ledger.adapter.transport.attempts == 0  # type: ignore[attr-defined]
    assert sandbox.calls == []


@pytest.mark.parametrize(("case", "call", "field"), SHARED + PUBLIC, ids=[c[0] for c in SHARED + PUBLIC])
async def test_public_client_refuses_bad_input_before_any_request(
    sandbox: MultiRegnskabSandbox, connect: Connector, case: str, call: Call, field: str
) -> None:
    await _refused(connect.public(), sandbox, call, field)


@pytest.mark.parametrize(("case", "call", "field"), SHARED + S2S, ids=[c[0] for c in SHARED + S2S])
async def test_s2s_refuses_bad_input_before_any_request(
    sandbox: MultiRegnskabSandbox, connect: Connector, case: str, call: Call, field: str
) -> None:
    await _refused(connect.s2s(), sandbox, call, field)


async def test_a_reference_outside_ascii_is_sent_percent_encoded_in_the_trace_header(
    sandbox: MultiRegnskabSandbox, connect: Connector
) -> None:
    async with connect.public() as ledger:
        await ledger.registrations.submit(registration(reference="Løn 11/2026 100%"))
    post = sandbox.calls_to("POST", "/suggestedRegistrations")[0]
    assert post.headers["X-MultiRegnskabTraceId"] == "L%C3%B8n 11/2026 100%25"


@pytest.mark.parametrize("api", ["public", "s2s"])
@pytest.mark.parametrize("trace_id", ["trace\r\nX-Injected: 1", "t\x00", "t\ud800"])
def test_a_trace_id_setting_that_cannot_be_a_header_is_a_configuration_error(
    connect: Connector, api: str, trace_id: str
) -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        getattr(connect, api)(trace_id=trace_id)
    assert "'trace_id'" in str(info.value)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("company", "٣"),
        ("company", "1/2"),
        ("company", True),
        ("api_key", "s2s-secret\r\nX: y"),
        ("api_key_prefix", "Bearer\n"),
        ("api_key_header", "X-Api Key"),
        ("api_key_header", "X-Api-Key\r\nX-Injected"),
    ],
)
def test_s2s_settings_in_paths_and_headers_are_checked(connect: Connector, setting: str, value: object) -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        connect.s2s(**{setting: value})
    assert f"'{setting}'" in str(info.value)
    assert "s2s-secret" not in str(info.value)
