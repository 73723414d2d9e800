"""ab.pull on the memory adapter: at-least-once delivery with no gap, checkpoints that move only on ack."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import threading
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from accounting_bridge.adapters.memory import MemoryStore

import accounting_bridge as ab
from accounting_bridge.sync import SqliteJournal, pull

TODAY = _dt.date(2026, 11, 30)
DAY = _dt.timedelta(days=1)


class Books:
    """A memory ledger with helpers to add items, and a journal file for its feeds."""

    def __init__(self, ledger: ab.Ledger, journal: Path) -> None:
        self.ledger, self.journal = ledger, journal
        self.store: MemoryStore = ledger.adapter.store  # type: ignore[attr-defined]

    async def invoice(self, number: str, day: _dt.date = TODAY, amount: str = "100.00") -> None:
        if "K-1" not in self.store.customers:
            await self.ledger.customers.upsert(ab.Customer(number="K-1", name="Muster AG"))
        line = ab.InvoiceLine(description="Work", unit_price=Decimal(amount))
        await self.ledger.invoices.create(
            ab.Invoice(number=number, customer_number="K-1", issue_date=day, lines=[line])
        )

    async def payment(self, invoice: str, day: _dt.date = TODAY, amount: str = "10.00") -> ab.Payment:
        if invoice not in self.store.invoices:
            await self.invoice(invoice, day, "1000.00")
        return await self.ledger.payments.create(ab.Payment(invoice_number=invoice, date=day, amount=Decimal(amount)))

    async def batch(self, kind: str = "payments", feed: str = "feed", **kwargs: Any) -> list[Any]:
        """One pull that reads everything and exits cleanly."""
        async with pull(self.ledger, kind, journal=self.journal, feed=feed, today=lambda: TODAY, **kwargs) as changes:
            return [item async for item in changes]


@pytest.fixture
async def books(tmp_path: Path) -> AsyncIterator[Books]:
    async with ab.connect("memory", today=lambda: TODAY) as ledger:
        yield Books(ledger, tmp_path / "sync.sqlite3")


def ids(items: list[Any]) -> list[str]:
    return [item.id for item in items]


class Crash(Exception):
    pass


# --- at least once, no gap ----------------------------------------------------------------------------------------


async def test_items_created_while_a_consumer_is_mid_batch_come_in_the_next_batch(books: Books) -> None:
    first = [await books.payment("R-1"), await books.payment("R-2")]
    late: list[ab.Payment] = []
    async with pull(books.ledger, "payments", journal=books.journal, feed="f", today=lambda: TODAY) as changes:
        seen = []
        async for payment in changes:
            seen.append(payment)
            if not late:
                late.append(await books.payment("R-3"))  # same date as the others: on the window's edge
    assert ids(seen) == ids(first)
    assert ids(await books.batch(feed="f")) == ids(late)
    assert await books.batch(feed="f") == []


async def test_a_consumer_that_crashes_before_ack_gets_the_same_items_again(books: Books) -> None:
    made = [await books.payment(f"R-{n}") for n in range(3)]

    async def crash_on_the_first() -> None:
        async with pull(books.ledger, "payments", journal=books.journal, feed="f") as changes:
            async for _payment in changes:
                raise Crash

    with pytest.raises(Crash):
        await crash_on_the_first()
    assert ids(await books.batch(feed="f")) == ids(made)


async def test_the_same_pull_entered_again_after_a_crash_starts_over(books: Books) -> None:
    made = [await books.payment(f"R-{n}") for n in range(2)]
    changes = pull(books.ledger, "payments", journal=books.journal, feed="f")

    async def crash_on_the_first() -> None:
        async with changes:
            async for _payment in changes:
                raise Crash

    with pytest.raises(Crash):
        await crash_on_the_first()
    async with changes:
        assert ids([p async for p in changes]) == ids(made)


async def test_a_cancelled_consumer_gets_the_same_items_again(books: Books) -> None:
    made = [await books.payment(f"R-{n}") for n in range(2)]
    inside = asyncio.Event()

    async def consume() -> None:
        async with pull(books.ledger, "payments", journal=books.journal, feed="f") as changes:
            async for _payment in changes:
                inside.set()
                await asyncio.Event().wait()  # stuck in its own work until cancelled

    task = asyncio.create_task(consume())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ids(await books.batch(feed="f")) == ids(made)


async def test_an_ack_keeps_what_came_before_it_through_a_later_crash(books: Books) -> None:
    made = [await books.payment(f"R-{n}") for n in range(3)]

    async def ack_each_then_crash_on_the_second() -> None:
        async with pull(books.ledger, "payments", journal=books.journal, feed="f") as changes:
            async for payment in changes:
                if payment.id == made[1].id:
                    raise Crash
                await changes.ack()

    with pytest.raises(Crash):
        await ack_each_then_crash_on_the_second()
    assert ids(await books.batch(feed="f")) == ids(made[1:])


async def test_a_consumer_that_stops_early_gets_the_rest_next_time(books: Books) -> None:
    made = [await books.payment("R-0", TODAY), await books.payment("R-1", TODAY - 2 * DAY)]
    made.append(await books.payment("R-2", TODAY - DAY))
    async with pull(books.ledger, "payments", journal=books.journal, feed="f", overlap=_dt.timedelta(0)) as changes:
        async for _payment in changes:
            break  # a clean exit: the one item it took is acknowledged, the window does not move past the rest
    assert ids(await books.batch(feed="f", overlap=_dt.timedelta(0))) == ids(made[1:])


async def test_equal_dates_on_the_window_edge_are_never_skipped(books: Books) -> None:
    # No overlap at all: the window starts at the newest date read, inclusive; that date's items are told apart
    # by key, so newcomers on the same date are delivered and the ones already read are not.
    zero = _dt.timedelta(0)
    edge = TODAY - 3 * DAY
    first = [await books.payment("R-1", edge), await books.payment("R-2", edge - DAY)]
    assert ids(await books.batch(feed="f", overlap=zero)) == ids(first)
    checkpoint = json.loads(await _checkpoint(books.journal, "f"))
    assert checkpoint["low"] == edge.isoformat()
    assert list(checkpoint["seen"]) == [f"R-1/{first[0].id}"]  # the older one is behind the window: pruned
    second = [await books.payment("R-3", edge), await books.payment("R-4", edge)]
    assert ids(await books.batch(feed="f", overlap=zero)) == ids(second)
    assert await books.batch(feed="f", overlap=zero) == []


async def test_an_item_back_dated_within_the_overlap_is_delivered(books: Books) -> None:
    await books.payment("R-1", TODAY)
    await books.batch(feed="f", overlap=2 * DAY)
    back_dated = await books.payment("R-2", TODAY - 2 * DAY)
    assert ids(await books.batch(feed="f", overlap=2 * DAY)) == [back_dated.id]


async def test_since_starts_the_feed(books: Books) -> None:
    await books.payment("R-old", TODAY - 10 * DAY)
    recent = await books.payment("R-new", TODAY - 2 * DAY)
    assert ids(await books.batch(feed="f", since=TODAY - 5 * DAY)) == [recent.id]


# --- invoices: status and paid amount -----------------------------------------------------------------------------


async def test_an_invoice_comes_again_when_its_status_or_paid_amount_changes(books: Books) -> None:
    await books.invoice("R-1", amount="100.00")
    [opened] = await books.batch("invoices")
    assert (opened.number, opened.status, opened.paid_amount) == ("R-1", ab.InvoiceStatus.OPEN, Decimal(0))
    assert await books.batch("invoices") == []
    await books.payment("R-1", amount="40.00")
    [partly] = await books.batch("invoices")
    assert (partly.status, partly.paid_amount) == (ab.InvoiceStatus.PARTIALLY_PAID, Decimal("40.00"))
    await books.payment("R-1", amount="60.00")
    [paid] = await books.batch("invoices")
    assert (paid.status, paid.paid_amount) == (ab.InvoiceStatus.PAID, Decimal("100.00"))
    assert await books.batch("invoices") == []


async def test_an_old_unpaid_invoice_holds_the_window_until_it_is_settled(books: Books) -> None:
    old = TODAY - 200 * DAY
    await books.invoice("R-old", old)
    await books.invoice("R-new", TODAY)
    assert [i.number for i in await books.batch("invoices")] == ["R-old", "R-new"]
    low = json.loads(await _checkpoint(books.journal, "feed"))["low"]
    assert low == old.isoformat()  # not TODAY - overlap: R-old may still be paid
    await books.payment("R-old", amount="100.00")
    [paid] = await books.batch("invoices")
    assert (paid.number, paid.status) == ("R-old", ab.InvoiceStatus.PAID)
    saved = json.loads(await _checkpoint(books.journal, "feed"))
    assert saved["low"] == (TODAY - 31 * DAY).isoformat()
    assert list(saved["seen"]) == ["R-new"]


async def test_bank_transactions_are_pulled_by_date_window(books: Books) -> None:
    [first] = await books.ledger.bank_transactions.submit(
        [ab.BankTransaction(account="1020", date=TODAY, amount=Decimal("5.00"), text="in")]
    )
    assert ids(await books.batch("bank_transactions", account="1020")) == [first.id]
    assert await books.batch("bank_transactions", account="1020") == []


async def test_identical_items_without_an_id_are_each_delivered(books: Books) -> None:
    coffee = ab.BankTransaction(account="1020", date=TODAY, amount=Decimal("-4.50"), text="Café")
    books.store.bank_transactions.extend([coffee, coffee])  # a backend that gives its bank lines no id
    assert await books.batch("bank_transactions", account="1020") == [coffee, coffee]
    books.store.bank_transactions.append(coffee)  # a third one of the same day
    assert await books.batch("bank_transactions", account="1020") == [coffee]
    assert await books.batch("bank_transactions", account="1020") == []


# --- the checkpoint and the journal -------------------------------------------------------------------------------


async def _checkpoint(path: Path, feed: str) -> str:
    async with SqliteJournal(path) as journal:
        value = await journal.checkpoint(feed)
    assert value is not None
    return value


async def test_the_checkpoint_is_json_text_in_the_journal_and_moves_only_on_ack(books: Books) -> None:
    await books.payment("R-1")
    async with SqliteJournal(books.journal) as journal:
        async with pull(books.ledger, "payments", journal=journal, feed="f") as changes:
            assert [p async for p in changes]
            assert await journal.checkpoint("f") is None
            await changes.ack()
            saved = await journal.checkpoint("f")
        assert await journal.checkpoint("f") == saved  # nothing new was handed out after the ack
        assert saved is not None
        assert json.loads(saved)["mode"] == "window"
        assert json.loads(saved)["kind"] == "payments"
        assert await journal.rows() == []  # a journal passed in stays open after the pull


async def test_an_ack_mid_pass_then_a_clean_end_moves_the_window(books: Books) -> None:
    made = [await books.payment("R-1", TODAY - 40 * DAY), await books.payment("R-2", TODAY - 2 * DAY)]
    async with pull(books.ledger, "payments", journal=books.journal, feed="f") as changes:
        async for _payment in changes:
            await changes.ack()
        assert json.loads(await _checkpoint(books.journal, "f"))["low"] is None  # the pass had not ended yet
    saved = json.loads(await _checkpoint(books.journal, "f"))
    assert saved["low"] == (TODAY - 33 * DAY).isoformat()  # newest read (TODAY - 2) minus the 31-day overlap
    assert list(saved["seen"]) == [f"R-2/{made[1].id}"]
    assert await books.batch(feed="f") == []
    assert not [t for t in threading.enumerate() if t.name.startswith("journal ")]  # a journal by path is closed


async def test_a_feed_name_belongs_to_one_kind_and_backend(books: Books) -> None:
    await books.batch("payments", feed="f")
    with pytest.raises(ab.ConfigurationError, match="feed 'f' was read as kind 'payments', not 'invoices'"):
        await books.batch("invoices", feed="f")


async def test_a_damaged_checkpoint_is_a_configuration_error(books: Books) -> None:
    async with SqliteJournal(books.journal) as journal:
        await journal.save_checkpoint("f", "{not json")
    with pytest.raises(ab.ConfigurationError, match="feed 'f': the saved checkpoint is not one this version"):
        await books.batch(feed="f")


# --- arguments, checked before any I/O ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda led, j: pull(led, "orders", journal=j, feed="f"), "kind"),
        (lambda led, j: pull(led, "payments", journal=j, feed=""), "feed"),
        (lambda led, j: pull(led, "payments", journal=j, feed="f", since="2026-01-01"), "since"),
        (lambda led, j: pull(led, "payments", journal=j, feed="f", account="1020"), "account"),
        (lambda led, j: pull(led, "payments", journal=j, feed="f", overlap=-DAY), "overlap"),
    ],
)
def test_bad_arguments_name_the_argument(books: Books, call: Callable[..., Any], field: str) -> None:
    with pytest.raises(ab.ValidationError) as caught:
        call(books.ledger, books.journal)
    assert caught.value.fields == (field,)


async def test_a_kind_the_backend_cannot_list_is_unsupported_before_any_io(tmp_path: Path) -> None:
    async with ab.connect("multiregnskab-s2s", api_key="k", company="1", base_url="http://127.0.0.1:9/") as ledger:
        with pytest.raises(ab.UnsupportedOperation, match=r"payments\.list"):
            pull(ledger, "payments", journal=tmp_path / "j.sqlite3", feed="f")


async def test_native_true_needs_a_backend_with_a_native_feed(books: Books) -> None:
    with pytest.raises(ab.UnsupportedOperation, match="native change feed"):
        pull(books.ledger, "payments", journal=books.journal, feed="f", native=True)


async def test_changes_are_read_inside_async_with_only(books: Books) -> None:
    changes = pull(books.ledger, "payments", journal=books.journal, feed="f")
    with pytest.raises(ab.ConfigurationError, match="async with"):
        changes.__aiter__()
    with pytest.raises(ab.ConfigurationError, match="async with"):
        await changes.ack()
