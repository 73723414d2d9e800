"""ab.pull against the backends' sandboxes over real sockets (127.0.0.1): Run my Accounts' native payment feed,
date windows on smallinvoice and Multi-Regnskab."""

from __future__ import annotations

import datetime as _dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.sync import SqliteJournal, pull


class Crash(Exception):
    pass


async def read_all(ledger: ab.Ledger, kind: str, journal: Path, feed: str, **kwargs: Any) -> list[Any]:
    async with pull(ledger, kind, journal=journal, feed=feed, **kwargs) as changes:
        return [item async for item in changes]


async def crash_after_reading(ledger: ab.Ledger, kind: str, journal: Path, feed: str) -> list[Any]:
    got: list[Any] = []
    try:
        async with pull(ledger, kind, journal=journal, feed=feed) as changes:
            async for item in changes:
                got.append(item)
            raise Crash
    except Crash:
        return got


# --- Run my Accounts: payment_list + set_as_processed --------------------------------------------------------------


async def unprocessed(ledger: ab.Ledger) -> list[str | None]:
    """The payments Run my Accounts has not seen marked processed by this API key."""
    return [p.id for p in await ledger.adapter.payment_list()]  # type: ignore[attr-defined]


@pytest.fixture
async def rma() -> AsyncIterator[ab.Ledger]:
    async with RmaSandbox() as sandbox:
        sandbox.seed(customers=2, invoices=6)  # RE-5001 and RE-5004 are paid
        async with ab.connect("runmyaccounts", base_url=sandbox.base_url, **sandbox.connect_settings()) as ledger:
            yield ledger


async def test_rma_payments_come_from_the_native_feed_marked_processed_on_ack(rma: ab.Ledger, tmp_path: Path) -> None:
    ledger = rma
    journal = tmp_path / "sync.sqlite3"
    seeded = [p.id async for p in ledger.payments.list()]
    assert len(seeded) == 2
    crashed = await crash_after_reading(ledger, "payments", journal, "rma")
    assert [p.id for p in crashed] == seeded
    assert await unprocessed(ledger) == seeded  # nothing marked: the same payments come again

    late: list[ab.Payment] = []
    async with pull(ledger, "payments", journal=journal, feed="rma") as changes:
        assert changes.mode == "native"
        got = []
        async for payment in changes:
            got.append(payment.id)
            if not late:
                today = _dt.date.today()
                late.append(await ledger.payments.create(ab.Payment(invoice_number="RE-5002", date=today,
                                                                    amount=Decimal("10.00"))))  # fmt: skip
    assert got == seeded
    assert await unprocessed(ledger) == [late[0].id]  # the ack marked what was handed out
    assert [p.id for p in await read_all(ledger, "payments", journal, "rma")] == [late[0].id]
    assert await read_all(ledger, "payments", journal, "rma") == []


class DiesBeforeSaving(SqliteJournal):
    """A journal whose process "dies" after the backend was told, before the checkpoint is written."""

    async def save_checkpoint(self, feed: str, value: str) -> None:
        raise Crash


async def test_rma_native_feed_dying_between_marking_and_saving_loses_nothing(rma: ab.Ledger, tmp_path: Path) -> None:
    path = tmp_path / "sync.sqlite3"
    seeded = [p.id async for p in rma.payments.list()]
    with pytest.raises(Crash):
        async with DiesBeforeSaving(path) as journal, pull(rma, "payments", journal=journal, feed="rma") as changes:
            assert [p.id async for p in changes] == seeded  # handled; the clean exit marks them, then "dies"
    assert await unprocessed(rma) == []  # the marks are the feed's state on the backend: the checkpoint holds none
    paid = await rma.payments.create(ab.Payment(invoice_number="RE-5002", date=_dt.date.today(), amount=Decimal("1")))
    assert [p.id for p in await read_all(rma, "payments", path, "rma")] == [paid.id]


async def test_rma_payments_by_date_window_when_asked(rma: ab.Ledger, tmp_path: Path) -> None:
    ledger = rma
    journal = tmp_path / "sync.sqlite3"
    async with pull(ledger, "payments", journal=journal, feed="w", native=False) as changes:
        assert changes.mode == "window"
        assert len([p async for p in changes]) == 2
    assert len(await unprocessed(ledger)) == 2  # the backend's per-key flags are left alone
    with pytest.raises(ab.ConfigurationError, match="feed 'w' was read as mode 'window', not 'native'"):
        await read_all(ledger, "payments", journal, "w")


async def test_rma_invoices_come_again_when_paid(rma: ab.Ledger, tmp_path: Path) -> None:
    ledger = rma
    journal = tmp_path / "sync.sqlite3"
    first = {i.number: i.status for i in await read_all(ledger, "invoices", journal, "inv")}
    assert len(first) == 6 and first["RE-5001"] is ab.InvoiceStatus.PAID
    assert await read_all(ledger, "invoices", journal, "inv") == []
    await ledger.payments.create(ab.Payment(invoice_number="RE-5002", date=_dt.date.today(), amount=Decimal("1.00")))
    [changed] = await read_all(ledger, "invoices", journal, "inv")
    assert changed.number == "RE-5002" and changed.paid_amount == Decimal("1.00")  # (still overdue: RMA says so)


# --- smallinvoice: date windows --------------------------------------------------------------------------------------


@pytest.fixture
async def smallinvoice() -> AsyncIterator[ab.Ledger]:
    sandbox = SmallInvoiceSandbox()
    sandbox.add_client("client", "secret")
    await sandbox.start()
    try:
        async with ab.connect(
            "smallinvoice", base_url=sandbox.base_url, client_id="client", client_secret="secret"
        ) as ledger:
            yield ledger
    finally:
        await sandbox.stop()


def invoice(number: str, day: _dt.date) -> ab.Invoice:
    line = ab.InvoiceLine(description="Beratung", unit_price=Decimal("100.00"))
    return ab.Invoice(number=number, customer_number="K-1", issue_date=day, lines=[line])


async def test_smallinvoice_invoices_and_payments_by_date_window(smallinvoice: ab.Ledger, tmp_path: Path) -> None:
    ledger, journal, day = smallinvoice, tmp_path / "sync.sqlite3", _dt.date.today()
    address = ab.Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH")
    await ledger.customers.upsert(ab.Customer(number="K-1", name="Muster AG", address=address))
    await ledger.invoices.create(invoice("R-1", day))
    crashed = await crash_after_reading(ledger, "invoices", journal, "inv")
    assert [i.number for i in crashed] == ["R-1"]
    late: list[str] = []
    async with pull(ledger, "invoices", journal=journal, feed="inv") as changes:
        async for item in changes:
            late.append(item.number)
            await ledger.invoices.create(invoice("R-2", day))  # mid-batch, on the same date
    assert late == ["R-1"]
    assert [i.number for i in await read_all(ledger, "invoices", journal, "inv")] == ["R-2"]
    paid = await ledger.payments.create(ab.Payment(invoice_number="R-1", date=day, amount=Decimal("50.00")))
    [changed] = await read_all(ledger, "invoices", journal, "inv")
    assert changed.number == "R-1" and changed.status is ab.InvoiceStatus.PARTIALLY_PAID
    assert [p.id for p in await read_all(ledger, "payments", journal, "pay")] == [paid.id]
    assert await read_all(ledger, "payments", journal, "pay") == []


# --- Multi-Regnskab: bank postings by date window -------------------------------------------------------------------


async def test_multiregnskab_bank_transactions_by_date_window(tmp_path: Path) -> None:
    journal = tmp_path / "sync.sqlite3"
    async with MultiRegnskabSandbox() as sandbox:
        settings = {"username": sandbox.username, "password": sandbox.password}
        async with ab.connect("multiregnskab", base_url=sandbox.public_url, **settings) as ledger:
            first = await read_all(ledger, "bank_transactions", journal, "bank")
            assert [t.text for t in first] == ["Moms", "Husleje", "Indbetaling faktura 1042", "Gebyr januar"]
            account = next(iter(sandbox.companies[1002].bank_accounts))
            today = sandbox.today()
            postings = sandbox.companies[1002].bank_postings[account]
            postings.append(sandbox._posting(today, "Indbetaling faktura 1043", "99,00", None))
            postings.append(sandbox._posting(today - _dt.timedelta(days=3), "Gebyr februar", "-5,00", None))
            later = await read_all(ledger, "bank_transactions", journal, "bank")
            assert sorted(t.text for t in later) == ["Gebyr februar", "Indbetaling faktura 1043"]
            assert await read_all(ledger, "bank_transactions", journal, "bank") == []
