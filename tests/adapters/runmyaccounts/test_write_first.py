"""Invoice create with `invoice_write_first=True` (issue 9.2) and concurrent creates of one number in both modes
(issue 15.3): one invoice per number, the same content is the existing record, different content `Conflict`."""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge import InvoiceLine, TaxLine

DAY = _dt.date(2024, 5, 2)


def invoice(number: str = "R-WF1", customer: str = "K-1001") -> ab.Invoice:
    return ab.Invoice(
        number=number, customer_number=customer, issue_date=DAY, due_date=DAY + _dt.timedelta(days=30),
        lines=[InvoiceLine(description="Schulung", unit_price=D("1250.00"), account="3400")],
        tax_lines=[TaxLine(account="2201", amount=D("101.25"))],
    )  # fmt: skip


def invoice_requests(sandbox: RmaSandbox) -> list[str]:
    return [method for method, path in sandbox.requests if "/invoices" in path]


@pytest.mark.parametrize("wire_format", ["json", "xml"])
async def test_a_new_invoice_costs_one_post_and_one_read_back(
    sandbox: RmaSandbox, connect: Any, wire_format: str
) -> None:
    async with connect(sandbox, wire_format, invoice_write_first=True) as ledger:
        created = await ledger.invoices.create(invoice())
    assert created.total == D("1351.25") and list(sandbox.state.invoices) == ["R-WF1"]
    assert invoice_requests(sandbox) == ["POST", "GET"]


async def test_the_default_looks_the_number_up_first(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox) as ledger:
        await ledger.invoices.create(invoice())
    assert invoice_requests(sandbox) == ["GET", "POST", "GET"]


async def test_write_first_identical_resend_is_the_stored_invoice(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox, invoice_write_first=True) as ledger:
        created = await ledger.invoices.create(invoice())
        again = await ledger.invoices.create(invoice())
        assert ledger.adapter.last_create_was_present  # type: ignore[attr-defined]
    assert again.number == created.number and again.total == created.total
    assert list(sandbox.state.invoices) == ["R-WF1"]


async def test_write_first_other_content_is_conflict(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox, invoice_write_first=True) as ledger:
        await ledger.invoices.create(invoice())
        with pytest.raises(ab.Conflict) as info:
            await ledger.invoices.create(invoice(customer="K-2040"))
    assert "customer" in str(info.value)
    assert sandbox.state.invoices["R-WF1"]["customernumber"] == "K-1001"


async def test_write_first_refusal_of_an_absent_number_stays_the_refusal(sandbox: RmaSandbox, connect: Any) -> None:
    async with connect(sandbox, invoice_write_first=True) as ledger:
        with pytest.raises(ab.Unprocessable) as info:
            await ledger.invoices.create(invoice(customer="K-NONE"))
    assert "K-NONE" in str(info.value) and sandbox.state.invoices == {}


@pytest.mark.parametrize("wire_format", ["json", "xml"])
async def test_write_first_dropped_answer_creates_exactly_one(
    sandbox: RmaSandbox, connect: Any, wire_format: str
) -> None:
    async with connect(sandbox, wire_format, invoice_write_first=True) as ledger:
        sandbox.faults.drop_after_commit()
        created = await ledger.invoices.create(invoice())
    assert created.number == "R-WF1" and list(sandbox.state.invoices) == ["R-WF1"]
    assert sum(1 for method in invoice_requests(sandbox) if method == "POST") == 1


def _both_miss_the_look_up(ledgers: list[ab.Ledger]) -> None:
    """Each ledger's first look-up of the number waits until both have looked and missed: both then write."""
    looked, both_looked = 0, asyncio.Event()
    for ledger in ledgers:
        adapter: Any = ledger.adapter
        original: Callable[[str], Any] = adapter._invoice_tree
        first = [True]

        async def tree(number: str, original: Callable[[str], Any] = original, first: list[bool] = first) -> Any:
            nonlocal looked
            found = await original(number)
            if first[0]:
                first[0] = False
                looked += 1
                if looked == len(ledgers):
                    both_looked.set()
                await both_looked.wait()
            return found

        adapter._invoice_tree = tree


@pytest.mark.parametrize("write_first", [False, True], ids=["look-up-first", "write-first"])
@pytest.mark.parametrize("same", [True, False], ids=["same-content", "other-content"])
async def test_concurrent_creates_of_one_number(
    sandbox: RmaSandbox, connect: Any, write_first: bool, same: bool
) -> None:
    first, second = invoice(), invoice() if same else attrs.evolve(invoice(), customer_number="K-2040")
    async with (
        connect(sandbox, invoice_write_first=write_first) as one,
        connect(sandbox, invoice_write_first=write_first) as two,
    ):
        if not write_first:
            _both_miss_the_look_up([one, two])
        results = await asyncio.gather(one.invoices.create(first), two.invoices.create(second), return_exceptions=True)
    assert len(sandbox.state.invoices) == 1
    assert sum(1 for method in invoice_requests(sandbox) if method == "POST") == 2  # both really wrote
    created = [r for r in results if isinstance(r, ab.Invoice)]
    if same:
        assert len(created) == 2 and created[0].total == created[1].total
    else:
        assert len(created) == 1 and any(isinstance(r, ab.Conflict) for r in results)
