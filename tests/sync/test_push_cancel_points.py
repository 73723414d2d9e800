"""A push cancelled at every await it makes (journal, adapter, look-up, progress), twice in a row, then pushed to
completion: every item reached the backend once, every journal row is `done`, nothing failed."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as _dt
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import accounting_bridge as ab
from accounting_bridge.sync import Claim, ItemKey, JournalState, SqliteJournal

from .workload import DAY, customer, invoice

WRITES = ("upsert_customer", "create_invoice", "create_payment", "submit_registration", "upload_document")
LOOK_UPS = ("get_invoice", "find_registration")
STREAMS = ("list_payments", "list_documents")
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("writing", default=False)


class Gates:
    """Numbered stops: the `stop_at`-th one a push passes blocks it there and signals `reached`."""

    def __init__(self) -> None:
        self.passed = 0
        self.stop_at: int | None = None
        self.reached = asyncio.Event()

    async def stop(self) -> None:
        self.passed += 1
        if self.passed == self.stop_at:
            self.reached.set()
            await asyncio.Event().wait()  # until cancelled

    def arm(self, stop_at: int | None) -> None:
        self.passed, self.stop_at = 0, stop_at
        self.reached.clear()


class GatedJournal(SqliteJournal):
    def __init__(self, path: Path, gates: Gates) -> None:
        super().__init__(path, durable=False)
        self.gates = gates

    async def claim(self, owner: str, item: ItemKey, content_hash: str) -> Claim:
        await self.gates.stop()
        claim = await super().claim(owner, item, content_hash)
        await self.gates.stop()
        return claim

    async def mark(self, owner: str, item: ItemKey, state: JournalState, **kwargs: Any) -> bool:
        await self.gates.stop()
        marked = await super().mark(owner, item, state, **kwargs)
        await self.gates.stop()
        return marked


def _gate_adapter(adapter: Any, gates: Gates, landed: Counter[tuple[str, str]]) -> None:
    """Stops before and after every write (counting the writes that landed) and before look-ups."""

    def write(name: str, real: Callable[..., Any]) -> Any:
        async def call(item: Any) -> Any:
            if _WRITING.get():  # a registration's attachment: one write with it, not a cancel point of its own
                return await real(item)
            await gates.stop()
            token = _WRITING.set(True)
            try:
                result = await real(item)
            finally:
                _WRITING.reset(token)
            landed[(name, _key(item))] += 1
            await gates.stop()
            return result

        return call

    def look_up(real: Callable[..., Any]) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            await gates.stop()
            return await real(*args, **kwargs)

        return call

    def stream(real: Callable[..., Any]) -> Any:
        async def call(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            await gates.stop()
            async for found in real(*args, **kwargs):
                yield found

        return call

    for name in WRITES:
        setattr(adapter, name, write(name, getattr(adapter, name)))
    for name in LOOK_UPS:
        setattr(adapter, name, look_up(getattr(adapter, name)))
    for name in STREAMS:
        setattr(adapter, name, stream(getattr(adapter, name)))


def _key(item: Any) -> str:
    if isinstance(item, ab.Payment):
        return f"{item.invoice_number}/{item.reference}"
    if isinstance(item, ab.Registration):
        return str(item.reference)
    if isinstance(item, ab.Document):
        return item.filename
    return str(item.number)


def _items() -> list[Any]:
    payslips = ab.Document(filename="payslips.pdf", content=b"%PDF-1.4 payslips", content_type="application/pdf")
    payroll = ab.Registration(
        date=DAY,
        description="Payroll May",
        reference="payroll-05",
        lines=[ab.PostingLine(account="5000", amount=Decimal("8000.00")),
               ab.PostingLine(account="1020", amount=Decimal("-8000.00"))],
        attachments=[payslips],
    )  # fmt: skip
    paid = [ab.Payment(invoice_number=f"R-0000{i}", date=DAY + _dt.timedelta(days=3), amount=Decimal("20.00"),
                       account="1020", reference=f"BANK-{i}") for i in range(2)]  # fmt: skip
    contract = ab.Document(filename="contract.pdf", content=b"%PDF-1.4 contract", content_type="application/pdf")
    return [*paid, invoice(0, "K-0000"), invoice(1, "K-0001"), invoice(2, "K-0000"), customer(0), customer(1),
            payroll, contract]  # fmt: skip


async def _push_stopped(ledger: ab.Ledger, journal: GatedJournal, stop_at: int) -> bool:
    """Push, cancelled at the `stop_at`-th stop; False when the push ended before it got there."""
    journal.gates.arm(stop_at)
    seen: list[ab.sync.ItemOutcome] = []

    async def progress(outcome: ab.sync.ItemOutcome) -> None:
        seen.append(outcome)
        await journal.gates.stop()

    task = asyncio.ensure_future(ab.push(ledger, _items(), journal=journal, concurrency=2, on_progress=progress))
    reached = asyncio.ensure_future(journal.gates.reached.wait())
    await asyncio.wait([task, reached], return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    if task.done():
        task.result()
        return False
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True


async def _store_counts(ledger: ab.Ledger) -> Counter[str]:
    store = ledger.adapter.store  # type: ignore[attr-defined]
    counts: Counter[str] = Counter()
    counts.update(f"payment {p.invoice_number}/{p.reference}" for p in store.payments)
    counts.update(f"document {d.filename}" for d in store.documents.values())
    counts.update(f"invoice {number}" for number in store.invoices)
    counts.update(f"registration {reference}" for reference in store.registrations)
    return counts


EXPECTED = Counter(
    ["payment R-00000/BANK-0", "payment R-00001/BANK-1", "invoice R-00000", "invoice R-00001", "invoice R-00002",
     "registration payroll-05", "document payslips.pdf", "document contract.pdf"]
)  # fmt: skip


async def test_a_push_cancelled_at_any_await_twice_then_rerun_sends_each_item_once(tmp_path: Path) -> None:
    stop_at = 1
    while True:
        gates = Gates()
        landed: Counter[tuple[str, str]] = Counter()
        async with ab.connect("memory", write_settle_delay=0.001) as ledger:  # look-ups of a dead run's rows wait 2 ms
            _gate_adapter(ledger.adapter, gates, landed)
            async with GatedJournal(tmp_path / f"journal-{stop_at}.sqlite3", gates) as journal:
                stopped = await _push_stopped(ledger, journal, stop_at)
                if not stopped:
                    break
                await _push_stopped(ledger, journal, stop_at)
                gates.arm(None)
                report = await ab.push(ledger, _items(), journal=journal)
                rows = await journal.rows()
            counts = await _store_counts(ledger)
        where = f"cancelled at stop {stop_at}"
        assert report.counts["failed"] == report.counts["unknown"] == report.counts["conflict"] == 0, where
        assert {r.state for r in rows} == {JournalState.DONE} and len(rows) == len(_items()), where
        assert counts == EXPECTED, where
        resent = {key: n for key, n in landed.items() if n > 1 and key[0] != "upsert_customer"}
        assert resent == {}, where
        stop_at += 1
    assert stop_at > 60  # every stop of a whole push was a cancel point
