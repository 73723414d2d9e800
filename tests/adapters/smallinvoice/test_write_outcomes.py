"""Outcomes of writes that landed, and the completeness of the idempotent invoice create — end to end over real
sockets against the sandbox, with its fault switches (FakeSleep makes retries instant).

A write that landed is never reported as a definite failure: an unreadable answer is read back, and a read-back
that fails gives `WriteOutcomeUnknown` naming the business key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest
from accounting_bridge.adapters.smallinvoice import SmallInvoiceAdapter
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep

ADDRESS = ab.Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH")
INVOICES = "/receivables/invoices"
#: more failures than the transport makes attempts (1 + max_retries)
ALL_ATTEMPTS = 8


def customer(number: str = "K-1", **changes: Any) -> ab.Customer:
    return attrs.evolve(ab.Customer(number=number, name=f"Kunde {number}", address=ADDRESS, currency="CHF"), **changes)


def invoice(number: str = "RE-1", **changes: Any) -> ab.Invoice:
    base = ab.Invoice(
        number=number,
        customer_number="K-1",
        issue_date=dt.date(2024, 5, 1),
        due_date=dt.date(2024, 5, 31),
        title="Beratung Mai",
        notes="Vielen Dank",
        lines=[
            ab.InvoiceLine(description="Beratung", quantity=Decimal("2.5"), unit_price=Decimal("120.10"),
                           tax_rate=Decimal("8.1"), unit="hour", note="Projekt A"),
            ab.InvoiceLine(description="Material", unit_price=Decimal("15.00"), tax_rate=Decimal("8.1")),
        ],
    )  # fmt: skip
    return attrs.evolve(base, **changes)


@pytest.fixture
async def ledger(connect: Callable[..., ab.Ledger]) -> AsyncIterator[ab.Ledger]:
    async with connect() as opened:
        opened.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
        await opened.customers.upsert(customer("K-1"))
        await opened.customers.upsert(customer("K-2"))
        yield opened


def adapter(ledger: ab.Ledger) -> SmallInvoiceAdapter:
    assert isinstance(ledger.adapter, SmallInvoiceAdapter)
    return ledger.adapter


def posts(sandbox: SmallInvoiceSandbox, path: str) -> int:
    """POSTs smallinvoice did not refuse (4xx); creates are sent first, so a refused duplicate is one more POST
    but never one more record."""
    return sum(
        1
        for method, path_qs, status, _id in sandbox.request_log
        if method == "POST" and path_qs.endswith(path) and not 400 <= status < 500
    )


# --- #8.7: a write that landed is success or WriteOutcomeUnknown ------------------------------------------------


async def test_invoice_confirmed_by_lookup_whose_read_back_fails_is_unknown(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.drop_next(path=INVOICES, method="POST", after_commit=True)
    # GETs on the invoices: the transport's lookup passes, every read-back attempt fails (no pre-check: the
    # create is sent first)
    sandbox.fail_next(500, count=ALL_ATTEMPTS, path=INVOICES, method="GET", skip=1)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.invoices.create(invoice())
    assert info.value.reference == "RE-1"
    assert [i["number"] for i in sandbox.invoices.values()] == ["RE-1"]


async def test_invoice_with_unreadable_answer_is_read_back(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    sandbox.garble_next(path=INVOICES, method="POST")
    created = await ledger.invoices.create(invoice())
    assert created.number == "RE-1" and created.id == str(next(iter(sandbox.invoices)))
    assert posts(sandbox, INVOICES) == 1


async def test_invoice_with_unreadable_answer_and_failing_read_back_is_unknown(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.garble_next(path=INVOICES, method="POST")
    sandbox.fail_next(500, count=ALL_ATTEMPTS, path=INVOICES, method="GET")  # every read-back fails
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.invoices.create(invoice())
    assert info.value.reference == "RE-1" and len(sandbox.invoices) == 1


async def test_new_contact_with_unreadable_answer_is_read_back(sandbox: SmallInvoiceSandbox, ledger: ab.Ledger) -> None:
    sandbox.garble_next(path="/contacts", method="POST")
    stored = await ledger.customers.upsert(customer("K-3"))
    assert stored.number == "K-3" and stored.id
    assert posts(sandbox, "/contacts") == 3  # K-1, K-2 and this one: not resent


async def test_updated_contact_with_unreadable_answer_is_read_back(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.garble_next(status=200, path="/contacts", method="PUT")
    stored = await ledger.customers.upsert(customer("K-1", name="Kunde Eins AG"))
    assert stored.name == "Kunde Eins AG"


async def test_new_contact_confirmed_by_lookup_whose_read_back_fails_is_unknown(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.drop_next(path="/contacts", method="POST", after_commit=True)
    sandbox.fail_next(500, count=ALL_ATTEMPTS, path="/contacts", method="GET", skip=1)  # the lookup passes
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.customers.upsert(customer("K-3"))
    assert info.value.reference == "K-3"
    assert sum(1 for contact in sandbox.contacts.values() if contact.get("number") == "K-3") == 1


async def test_payment_with_unreadable_answer_is_unknown_not_response_error(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    await ledger.invoices.create(invoice())
    sandbox.garble_next(path="/payments", method="POST")
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.payments.create(ab.Payment(invoice_number="RE-1", date=dt.date(2024, 5, 20), amount=Decimal("50")))
    assert info.value.reference == "RE-1" and "could not be read" in str(info.value)
    assert sum(len(p) for p in sandbox.payments.values()) == 1


async def test_status_change_with_unreadable_answer_is_read_back(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    await ledger.invoices.create(invoice())
    sandbox.garble_next(status=200, path="/change-status", method="PATCH")
    changed = await adapter(ledger).change_invoice_status("RE-1", ab.InvoiceStatus.OPEN)
    assert changed.status is ab.InvoiceStatus.OPEN


# --- #8.9: the idempotent create compares everything that was sent ----------------------------------------------


def _line(index: int, **changes: Any) -> Callable[[ab.Invoice], ab.Invoice]:
    def change(inv: ab.Invoice) -> ab.Invoice:
        lines = list(inv.lines)
        lines[index] = attrs.evolve(lines[index], **changes)
        return attrs.evolve(inv, lines=lines)

    return change


def _header(**changes: Any) -> Callable[[ab.Invoice], ab.Invoice]:
    return lambda inv: attrs.evolve(inv, **changes)


CHANGES = {
    "line description": _line(1, description="Material klein"),
    "line quantity": _line(0, quantity=Decimal("3")),
    "line price": _line(1, unit_price=Decimal("15.50")),
    "line vat": _line(1, tax_rate=Decimal("2.6")),
    "line discount": _line(1, discount_percent=Decimal("10")),
    "line note": _line(0, note="Projekt B"),
    "line item number": _line(1, item_number="MAT-1"),
    "one line less": lambda inv: attrs.evolve(inv, lines=inv.lines[:1]),
    "customer": _header(customer_number="K-2"),
    "issue date": _header(issue_date=dt.date(2024, 5, 2)),
    "due date": _header(due_date=dt.date(2024, 6, 30)),
    "currency": _header(currency="EUR"),
    "title": _header(title="Beratung Juni"),
    "notes": _header(notes="Merci"),
    "internal notes": _header(internal_notes="intern"),
    "prices include tax": _header(prices_include_tax=True),
}


@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
async def test_same_number_other_content_is_conflict(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger, change: Callable[[ab.Invoice], ab.Invoice]
) -> None:
    await ledger.invoices.create(invoice())
    with pytest.raises(ab.Conflict):
        await ledger.invoices.create(change(invoice()))
    assert posts(sandbox, INVOICES) == 1


async def test_identical_resend_returns_the_stored_invoice_without_a_second_write(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    created = await ledger.invoices.create(invoice())
    again = await ledger.invoices.create(invoice())
    assert again.id == created.id and again.lines == created.lines
    assert posts(sandbox, INVOICES) == 1


async def test_conflict_names_the_differing_fields(ledger: ab.Ledger) -> None:
    await ledger.invoices.create(invoice())
    with pytest.raises(ab.Conflict) as info:
        await ledger.invoices.create(CHANGES["line description"](invoice()))
    assert "lines[1].description" in str(info.value)


# --- after a lost answer, the invoice the lookup finds is ours only if its content matches ---------------------


async def test_own_invoice_found_after_a_lost_answer_is_returned(
    sandbox: SmallInvoiceSandbox, ledger: ab.Ledger
) -> None:
    sandbox.drop_next(path=INVOICES, method="POST", after_commit=True)
    created = await ledger.invoices.create(invoice())
    assert created.number == "RE-1" and [line.description for line in created.lines] == ["Beratung", "Material"]
    assert posts(sandbox, INVOICES) == 1 and len(sandbox.invoices) == 1


def _other_position_name(stored: dict[str, Any], sandbox: SmallInvoiceSandbox) -> None:
    stored["positions"][1]["name"] = "Material klein"


def _other_contact(stored: dict[str, Any], sandbox: SmallInvoiceSandbox) -> None:
    stored["contact_id"] = next(i for i, contact in sandbox.contacts.items() if contact.get("number") == "K-2")


@pytest.mark.parametrize(
    ("reshape", "difference"),
    [(_other_position_name, "lines[1].description"), (_other_contact, "customer")],
    ids=["other position", "other customer"],
)
async def test_other_invoice_found_after_a_lost_answer_is_unknown(
    sandbox: SmallInvoiceSandbox,
    ledger: ab.Ledger,
    monkeypatch: pytest.MonkeyPatch,
    reshape: Callable[[dict[str, Any], SmallInvoiceSandbox], None],
    difference: str,
) -> None:
    handle = sandbox._handle_authorized

    async def stored_otherwise(request: Any, handler: Any) -> Any:
        response = await handle(request, handler)
        if request.method == "POST" and request.path.endswith(INVOICES):
            reshape(next(iter(sandbox.invoices.values())), sandbox)
        return response

    monkeypatch.setattr(sandbox, "_handle_authorized", stored_otherwise)
    sandbox.drop_next(path=INVOICES, method="POST", after_commit=True)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.invoices.create(invoice())
    assert info.value.reference == "RE-1" and difference in str(info.value)
    assert posts(sandbox, INVOICES) == 1
