"""Bad input never leaves the process (issue #8.3, #8.5, #8.6): `ValidationError` naming the field, zero requests.

Run my Accounts puts invoice, customer and payable numbers and account numbers into URL paths, so a key that is
not one clean path segment (``.``, ``..``, ``/`` ...) would address another resource (``invoices/..`` is the
tenant root).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge import InvoiceLine, TaxLine
from accounting_bridge.testing import drive

DAY = _dt.date(2024, 5, 2)
PDF = b"%PDF-1.4\n%%EOF\n"


def invoice(number: str = "R-1", **changes: Any) -> ab.Invoice:
    values: dict[str, Any] = {
        "number": number,
        "customer_number": "K-1001",
        "issue_date": DAY,
        "due_date": DAY + _dt.timedelta(days=30),
        "lines": [InvoiceLine(description="Schulung", unit_price=D("100.00"), account="3400")],
        "tax_lines": [TaxLine(account="2201", amount=D("8.10"))],
    }
    values.update(changes)
    return ab.Invoice(**values)


def payment(invoice_number: str = "R-1", **changes: Any) -> ab.Payment:
    return ab.Payment(**{"invoice_number": invoice_number, "date": DAY, "amount": D("10.00"), **changes})


def posting(amount: str, account: str = "1020", **changes: Any) -> ab.PostingLine:
    return ab.PostingLine(account=account, amount=D(amount), **changes)


def registration(**changes: Any) -> ab.Registration:
    values: dict[str, Any] = {
        "date": DAY,
        "description": "Miete Mai",
        "lines": [posting("100.00", "6000"), posting("-100.00")],
    }
    values.update(changes)
    return ab.Registration(**values)


Call = Callable[[ab.Ledger], Any]

CASES: list[tuple[str, Call, str]] = [
    # keys in URL paths (#8.3)
    ("get-dot", lambda led: led.invoices.get("."), "number"),
    ("get-dotdot", lambda led: led.invoices.get(".."), "number"),
    ("get-slash", lambda led: led.invoices.get("R/1"), "number"),
    ("get-traversal", lambda led: led.invoices.get("../customers"), "number"),
    ("get-backslash", lambda led: led.invoices.get("R\\1"), "number"),
    ("get-query", lambda led: led.invoices.get("R?status=OPEN"), "number"),
    ("get-fragment", lambda led: led.invoices.get("R#1"), "number"),
    ("get-percent", lambda led: led.invoices.get("%2E%2E"), "number"),
    ("get-empty", lambda led: led.invoices.get(""), "number"),
    ("get-int", lambda led: led.invoices.get(240119), "number"),
    ("get-crlf", lambda led: led.invoices.get("R\r\n1"), "number"),
    ("get-nul", lambda led: led.invoices.get("R\x00"), "number"),
    ("get-surrogate", lambda led: led.invoices.get("R\ud800"), "number"),
    ("pdf-dotdot", lambda led: led.invoices.pdf(".."), "number"),
    ("customer-dot", lambda led: led.customers.get("."), "number"),
    ("payments-list-dotdot", lambda led: led.payments.list(invoice_number=".."), "invoice_number"),
    ("payment-dotdot", lambda led: led.payments.create(payment("..")), "invoice_number"),
    ("payment-slash", lambda led: led.payments.create(payment("R/1")), "invoice_number"),
    ("create-dotdot", lambda led: led.invoices.create(invoice("..")), "number"),
    ("create-percent", lambda led: led.invoices.create(invoice("R%1")), "number"),
    ("upsert-dot", lambda led: led.customers.upsert(ab.Customer(number=".", name="X")), "number"),
    ("nested-customer-slash", lambda led: led.invoices.create(
        invoice(customer_number=None, customer=ab.Customer(number="K/1", name="X"))), "customer.number"),
    ("bank-account-dotdot", lambda led: led.bank_transactions.list(account=".."), "account"),
    # control characters, CR/LF, NUL, lone surrogates (#8.5, #8.6)
    ("payment-crlf", lambda led: led.payments.create(payment("R-1\r\nX: 1")), "invoice_number"),
    ("line-surrogate", lambda led: led.invoices.create(
        invoice(lines=[InvoiceLine(description="x\ud800", unit_price=D(1), account="3400")])), "description"),
    ("line-nul", lambda led: led.invoices.create(
        invoice(lines=[InvoiceLine(description="a\x00b", unit_price=D(1), account="3400")])), "description"),
    ("notes-escape", lambda led: led.invoices.create(invoice(notes="\x1b[31mred")), "notes"),
    ("registration-reference-crlf", lambda led: led.registrations.submit(registration(reference="r\r\n")), "reference"),
    ("filename-crlf", lambda led: led.documents.upload(
        ab.Document(filename="a\r\n.pdf", content=PDF, content_type="application/pdf")), "filename"),
    ("customer-name-surrogate", lambda led: led.customers.upsert(ab.Customer(number="K-9", name="\udc80")), "name"),
    # over-long texts (documented TEXT(n) limits)
    ("customer-number-33", lambda led: led.customers.upsert(ab.Customer(number="K" * 33, name="X")), "number"),
    ("customer-name-65", lambda led: led.customers.upsert(ab.Customer(number="K-9", name="N" * 65)), "name"),
    ("customer-street-33", lambda led: led.customers.upsert(
        ab.Customer(number="K-9", name="X", address=ab.Address(street="S" * 33))), "address.street"),
    ("unit-6", lambda led: led.invoices.create(
        invoice(lines=[InvoiceLine(description="x", unit_price=D(1), account="3400", unit="Stunde")])),
     "lines[0].unit"),
    # money
    ("float-price", lambda led: led.invoices.create(
        invoice(lines=[InvoiceLine(description="x", unit_price=0.1, account="3400")])), "unit_price"),
    ("nan-amount", lambda led: led.payments.create(payment(amount="NaN")), "amount"),
    ("infinite-amount", lambda led: led.payments.create(payment(amount=D("Infinity"))), "amount"),
    ("float-amount", lambda led: led.payments.create(payment(amount=12.5)), "amount"),
    ("sub-cent-payment", lambda led: led.payments.create(payment(amount=D("10.001"))), "amount"),
    # registrations, types
    ("unbalanced", lambda led: led.registrations.submit(
        registration(lines=[posting("100.00", "6000"), posting("-99.99")])), "lines"),
    ("sub-cent-line", lambda led: led.registrations.submit(
        registration(lines=[posting("100.001", "6000"), posting("-100.001")])), "lines[0].amount"),
    ("invoice-not-a-model", lambda led: led.invoices.create({"number": "R-1"}), "invoice"),
    ("date-not-a-date", lambda led: led.payments.create(payment(date="yesterday")), "date"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_before_any_request(
    sandbox: RmaSandbox, connect: Any, case: str, call: Call, field: str
) -> None:
    async with connect(sandbox) as ledger:
        with pytest.raises(ab.ValidationError) as info:
            await drive(call(ledger))
        assert field in info.value.fields, info.value
        assert ledger.adapter.transport.attempts == 0
    assert sandbox.requests == []


async def test_a_dot_key_used_to_reach_the_tenant_root(sandbox: RmaSandbox, connect: Any) -> None:
    """The reported traversal: `invoices.get("..")` sent ``GET .../clients/demo/``; now nothing is sent."""
    async with connect(sandbox) as ledger:
        for key in (".", ".."):
            with pytest.raises(ab.ValidationError):
                await ledger.invoices.get(key)
    assert not any(path.rstrip("/").endswith("/clients/demo") for _method, path in sandbox.requests)


@pytest.mark.parametrize("key", ["...", "R 2026 ä", "a.b", "~x"])
async def test_other_keys_are_encoded_as_one_segment(sandbox: RmaSandbox, connect: Any, key: str) -> None:
    async with connect(sandbox) as ledger:
        with pytest.raises(ab.NotFound):
            await ledger.invoices.get(key)
    assert sandbox.requests == [("GET", f"/api/latest/clients/demo/invoices/{key}")]


@pytest.mark.parametrize("tenant", ["", ".", "..", "de/mo", "demo?x", "demo#", "de%2Fmo", "demo\n"])
def test_a_tenant_that_is_not_one_path_segment_is_a_configuration_error(tenant: str) -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("runmyaccounts", tenant=tenant, api_key="k")
    assert "'tenant'" in str(info.value)


def test_an_api_key_that_cannot_be_a_header_is_a_configuration_error_without_the_key() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("runmyaccounts", tenant="demo", api_key="rma-secret\r\nX-Evil: 1", auth="header")
    assert "'api_key'" in str(info.value) and "rma-secret" not in str(info.value)
