"""Bad input never leaves the process (issue #8.3, #8.5, #8.6): `ValidationError` naming the field, zero requests.

smallinvoice looks invoice and contact numbers up through the `filter` query parameter, never in a path: path
characters are fine in a number there (``RE-2026/001``), control characters and lone surrogates are not. What goes
into paths are the server's own ids: anything but a whole number is the server's fault (`ResponseError`), and no
request is sent to the path it would make.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.testing import drive

ADDRESS = ab.Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH")
DAY = dt.date(2024, 5, 1)


def customer(number: str = "K-1", **changes: Any) -> ab.Customer:
    return ab.Customer(**{"number": number, "name": "Kunde", "address": ADDRESS, "currency": "CHF", **changes})


def line(**changes: Any) -> ab.InvoiceLine:
    return ab.InvoiceLine(**{"description": "Beratung", "unit_price": D("120.00"), "tax_rate": D("8.1"), **changes})


def invoice(number: str = "R-1", **changes: Any) -> ab.Invoice:
    values: dict[str, Any] = {"number": number, "customer_number": "K-1", "issue_date": DAY, "lines": [line()]}
    values.update(changes)
    return ab.Invoice(**values)


def payment(invoice_number: str = "R-1", **changes: Any) -> ab.Payment:
    return ab.Payment(**{"invoice_number": invoice_number, "date": DAY, "amount": D("10.00"), **changes})


Call = Callable[[ab.Ledger], Any]

CASES: list[tuple[str, Call, str]] = [
    # keys passed to look-ups
    ("get-empty", lambda led: led.invoices.get(""), "number"),
    ("get-blank", lambda led: led.invoices.get("  "), "number"),
    ("get-int", lambda led: led.invoices.get(4711), "number"),
    ("get-none", lambda led: led.invoices.get(None), "number"),
    ("get-crlf", lambda led: led.invoices.get("R-1\r\nX: y"), "number"),
    ("get-nul", lambda led: led.invoices.get("R\x00"), "number"),
    ("get-surrogate", lambda led: led.invoices.get("R\ud800"), "number"),
    ("pdf-lf", lambda led: led.invoices.pdf("R\n"), "number"),
    ("customer-del", lambda led: led.customers.get("K\x7f"), "number"),
    ("payments-list-tab", lambda led: led.payments.list(invoice_number="R\t1"), "invoice_number"),
    ("invoices-list-nul", lambda led: led.invoices.list(customer_number="K\x00"), "customer_number"),
    # models: control characters, CR/LF, NUL, lone surrogates
    ("payment-crlf", lambda led: led.payments.create(payment("R\r\n1")), "invoice_number"),
    ("invoice-number-surrogate", lambda led: led.invoices.create(invoice("R\udfff")), "number"),
    ("customer-name-nul", lambda led: led.customers.upsert(customer(name="a\x00b")), "name"),
    ("street-surrogate", lambda led: led.customers.upsert(
        customer(address=ab.Address(street="x\ud800", postcode="8001", city="Z", country="CH"))), "street"),
    ("line-vt", lambda led: led.invoices.create(invoice(lines=[line(description="a\x0bb")])), "description"),
    ("notes-escape", lambda led: led.invoices.create(invoice(notes="\x1b[2J")), "notes"),
    ("memo-nul", lambda led: led.payments.create(payment(memo="\x00")), "memo"),
    # money
    ("float-price", lambda led: led.invoices.create(invoice(lines=[line(unit_price=0.1)])), "unit_price"),
    ("nan-amount", lambda led: led.payments.create(payment(amount="NaN")), "amount"),
    ("infinite-quantity", lambda led: led.invoices.create(invoice(lines=[line(quantity=D("-Infinity"))])), "quantity"),
    ("negative-payment", lambda led: led.payments.create(payment(amount=D("-5"))), "amount"),
    ("zero-quantity", lambda led: led.invoices.create(invoice(lines=[line(quantity=0)])), "lines[0].quantity"),
    # what smallinvoice cannot represent, wrong types
    ("credit-note", lambda led: led.invoices.create(invoice(kind="credit_note")), "kind"),
    ("tax-lines", lambda led: led.invoices.create(
        invoice(tax_lines=[ab.TaxLine(account="2200", amount=D(1))])), "tax_lines"),
    ("payment-reference", lambda led: led.payments.create(payment(reference="ref")), "reference"),
    ("payment-channel", lambda led: led.payments.create(payment(account="1020")), "account"),
    ("customer-iban", lambda led: led.customers.upsert(customer(iban="CH93 0076 2011 6238 5295 7")), "iban"),
    ("invoice-not-a-model", lambda led: led.invoices.create("R-1"), "invoice"),
    ("customer-not-a-model", lambda led: led.customers.upsert({"number": "K-1"}), "customer"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "call", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_before_any_request(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], case: str, call: Call, field: str
) -> None:
    async with connect() as ledger:
        with pytest.raises(ab.ValidationError) as info:
            await drive(call(ledger))
        assert field in info.value.fields, info.value
        assert ledger.adapter.transport.attempts == 0  # type: ignore[attr-defined]
    assert sandbox.request_log == [] and sandbox.grant_types == []


@pytest.mark.parametrize("number", [".", "..", "../contacts", "RE-2026/001", "R?x", "R#1", "100%"])
async def test_path_characters_in_a_number_stay_in_the_filter(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger, number: str
) -> None:
    with pytest.raises(ab.NotFound):
        await ledger.invoices.get(number)
    paths = {path.split("?")[0] for _method, path, _status, _rid in sandbox.request_log}
    assert paths <= {"/v2/auth/access-tokens", "/v2/receivables/invoices"}


async def _stored_invoice(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> dict[str, Any]:
    await ledger.customers.upsert(customer())
    created = await ledger.invoices.create(invoice())
    return sandbox.invoices[int(created.id or 0)]


@pytest.mark.parametrize("hostile", ["../../auth/owner", "..", "7/../../contacts", "7?x=1", "", None, D("7.5"), True])
async def test_a_server_id_that_is_not_a_whole_number_is_not_followed(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger, hostile: object
) -> None:
    stored = await _stored_invoice(sandbox, ledger)
    stored["id"] = hostile
    sent = len(sandbox.request_log)
    with pytest.raises(ab.ResponseError):
        await ledger.invoices.pdf("R-1")
    with pytest.raises(ab.ResponseError):
        await ledger.payments.create(payment())
    later = [path.split("?")[0] for _method, path, _status, _rid in sandbox.request_log[sent:]]
    assert set(later) == {"/v2/receivables/invoices"}  # only the look-ups by number


async def test_a_contact_id_that_is_not_a_whole_number_is_not_followed(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    stored = await ledger.customers.upsert(customer())
    sandbox.contacts[int(stored.id or 0)]["id"] = "../receivables/invoices"
    sent = len(sandbox.request_log)
    with pytest.raises(ab.ResponseError):
        await ledger.customers.upsert(customer(name="Kunde neu"))
    # the create is refused (the number is taken), the look-up finds the bad id: nothing is sent to it
    assert [method for method, _path, _status, _rid in sandbox.request_log[sent:]] == ["POST", "GET"]
