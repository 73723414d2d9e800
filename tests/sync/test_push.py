"""ab.push against the memory backend: journaling, outcomes, ordering, concurrency, look-up after interruptions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from accounting_bridge.adapters.memory import MemoryStore

import accounting_bridge as ab
from accounting_bridge.sync import ItemKey, ItemOutcome, JournalState, SqliteJournal
from accounting_bridge.sync.identity import ledger_key
from accounting_bridge.sync.report import OUTCOMES

from .spy import Spy, block_forever
from .workload import DAY, customer, invoice, invoices_with_customers


@pytest.fixture
async def ledger() -> AsyncIterator[ab.Ledger]:
    async with ab.connect("memory", write_settle_delay=0.001) as opened:  # a look-up after a run died waits 2 ms
        yield opened


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    async with SqliteJournal(tmp_path / "sync.sqlite3") as opened:
        yield opened


def _payment(number: str, reference: str) -> ab.Payment:
    return ab.Payment(invoice_number=number, date=DAY, amount=Decimal("50.00"), account="1020", reference=reference)


def _registration(reference: str) -> ab.Registration:
    return ab.Registration(
        date=DAY,
        description=f"Payroll {reference}",
        reference=reference,
        lines=[ab.PostingLine(account="5000", amount=Decimal("8000.00")),
               ab.PostingLine(account="1020", amount=Decimal("-8000.00"))],
        attachments=[ab.Document(filename=f"{reference}.pdf", content=b"%PDF-1.4 payslips")],
    )  # fmt: skip


def _mixed() -> list[Any]:
    return [
        *[_payment("R-00001", "BANK-1"), _payment("R-00002", "BANK-2")],
        *invoices_with_customers(12, 3),
        _registration("payroll-2024-05"),
        ab.Document(filename="contract.pdf", content=b"%PDF-1.4 contract", content_type="application/pdf"),
    ]


async def test_push_sends_each_item_once_customers_then_invoices_then_payments(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    spy = Spy(ledger)
    items = _mixed()
    report = await ab.push(ledger, items, journal=journal, concurrency=4)
    assert dict(report.counts) == {**dict.fromkeys(OUTCOMES, 0), "created": len(items)}
    assert report.ok and [o.index for o in report.outcomes] == list(range(len(items)))
    assert spy.last("upsert_customer") < spy.first("create_invoice")
    assert spy.last("create_invoice") < spy.first("create_payment")
    assert all(n == 1 for n in spy.count("create_invoice").values()) and len(spy.count("create_invoice")) == 12
    rows = await journal.rows()
    assert len(rows) == len(items) and {r.state for r in rows} == {JournalState.DONE}
    assert all(r.backend_id for r in rows)
    assert (await ledger.registrations.find("payroll-2024-05")) is not None


async def test_a_rerun_skips_everything_done_without_any_request(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    items = _mixed()
    await ab.push(ledger, items, journal=journal)
    spy = Spy(ledger)
    report = await ab.push(ledger, items, journal=journal)
    assert report.counts["skipped"] == len(items) and spy.calls == []


async def test_items_of_one_level_go_concurrently_up_to_the_limit(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    spy = Spy(ledger)
    in_flight, most = 0, 0
    all_four = asyncio.Event()

    async def gate(_key: str, _item: Any) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == 4:
            all_four.set()
        await all_four.wait()  # never released unless four run at once
        in_flight -= 1

    spy.before["create_invoice"] = gate
    report = await asyncio.wait_for(ab.push(ledger, invoices_with_customers(8, 2), journal=journal, concurrency=4), 30)
    assert report.counts["created"] == 10 and most == 4


async def test_the_same_key_with_other_content_is_a_conflict_and_nothing_is_overwritten(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    await ab.push(ledger, [customer(0), invoice(0, "K-0000")], journal=journal)
    changed = attrs.evolve(invoice(0, "K-0000"), title="changed")
    spy = Spy(ledger)
    report = await ab.push(ledger, [changed], journal=journal)
    (outcome,) = report.outcomes
    assert (outcome.outcome, outcome.state) == ("conflict", JournalState.DONE)
    assert isinstance(outcome.error, ab.Conflict) and "nothing was sent" in str(outcome.error)
    assert spy.calls == [] and (await ledger.invoices.get("R-00000")).title is None


async def test_bad_input_is_a_typed_error_per_item_and_the_others_go(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    loaded = json.loads(json.dumps(ab.to_dict(invoice(1, "K-0000"))).replace('"101.50"', "101.5"))
    items: list[Any] = [
        {"kind": "customer", "data": ab.to_dict(customer(0))},
        {"kind": "invoice", "data": loaded},  # a float amount, as json.loads makes it
        {"kind": "quote", "data": {}},
        invoice(2, "K-0000"),
        attrs.evolve(invoice(2, "K-0000"), title="other"),  # same number, other content
        invoice(2, "K-0000"),  # the very same item again: sent once
        42,
        ab.Registration(date=DAY, description="no reference", lines=_registration("x").lines),
    ]
    spy = Spy(ledger)
    report = await ab.push(ledger, items, journal=journal)
    outcomes = [(o.outcome, o.error.fields if isinstance(o.error, ab.ValidationError) else None)
                for o in report.outcomes]  # fmt: skip
    assert outcomes == [
        ("created", None),
        ("failed", ("lines[0].unit_price",)),
        ("failed", ("kind",)),
        ("created", None),
        ("failed", ("number",)),
        ("skipped", None),
        ("failed", ("",)),
        ("failed", ("reference",)),
    ]
    assert spy.calls == [("upsert_customer", "K-0000"), ("create_invoice", "R-00002")]
    assert {r.key for r in await journal.rows()} == {"K-0000", "R-00002"}
    assert json.loads(report.to_json())["items"][1]["error"]["fields"][0]["path"] == "lines[0].unit_price"


async def test_an_unknown_outcome_is_resolved_by_look_up_on_the_next_run(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    spy = Spy(ledger)

    async def lost_answer(key: str, _item: Any) -> None:
        raise ab.WriteOutcomeUnknown("the answer was lost", backend="memory", reference=key)

    async def refused_before_landing(key: str, _item: Any) -> None:
        if key == "R-00001":
            raise ab.WriteOutcomeUnknown("the answer was lost", backend="memory", reference=key)

    spy.after["create_invoice"] = lambda key, item: lost_answer(key, item) if key == "R-00000" else _nothing()
    spy.before["create_invoice"] = refused_before_landing
    first = await ab.push(ledger, invoices_with_customers(3, 1), journal=journal)
    assert [o.outcome for o in first.outcomes[:3]] == ["unknown", "unknown", "created"]
    assert (await journal.row(ItemKey(ledger_key(ledger), "invoice", "R-00000"))).state is JournalState.UNKNOWN  # type: ignore[union-attr]
    spy.after.clear()
    spy.before.clear()
    spy.calls.clear()
    second = await ab.push(ledger, invoices_with_customers(3, 1), journal=journal)
    assert [o.outcome for o in second.outcomes[:3]] == ["already_present", "created", "skipped"]
    assert spy.count("create_invoice") == {"R-00001": 1}
    assert {r.state for r in await journal.rows()} == {JournalState.DONE}


async def test_every_kind_whose_answer_was_lost_is_looked_up_not_sent_again(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    spy = Spy(ledger)

    async def lost_answer(key: str, _item: Any) -> None:
        if key != "pay-1.pdf":  # the registration's attachment goes through upload_document too
            raise ab.WriteOutcomeUnknown("the answer was lost", backend="memory", reference=key)

    await ledger.customers.upsert(customer(1))
    await ledger.invoices.create(invoice(1, "K-0001"))
    for method in ("upsert_customer", "create_invoice", "create_payment", "submit_registration", "upload_document"):
        spy.after[method] = lost_answer
    document = ab.Document(filename="contract.pdf", content=b"%PDF-1.4 contract")
    items = [customer(0), invoice(2, "K-0001"), _payment("R-00001", "BANK-1"), _registration("pay-1"), document]
    first = await ab.push(ledger, items, journal=journal)
    assert [o.outcome for o in first.outcomes] == ["unknown"] * 5
    spy.after.clear()
    spy.calls.clear()
    second = await ab.push(ledger, items, journal=journal)
    assert [o.outcome for o in second.outcomes] == ["created"] + ["already_present"] * 4
    assert spy.calls == [("upsert_customer", "K-0000")]  # an upsert is repeated as it is; nothing else is resent
    assert all(o.backend_id for o in second.outcomes)


async def _nothing() -> None:
    return None


async def test_a_cancelled_push_then_a_rerun_sends_nothing_twice_and_loses_nothing(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    spy = Spy(ledger)
    landed: list[str] = []
    cancel_now = asyncio.Event()

    async def after_landing(key: str, _item: Any) -> None:
        landed.append(key)
        if len(landed) == 7:  # the 7th invoice landed, its answer is still on the way: cancel now
            cancel_now.set()
            await block_forever(key, _item)

    spy.after["create_invoice"] = after_landing
    items = invoices_with_customers(40, 4)
    task = asyncio.ensure_future(ab.push(ledger, items, journal=journal, concurrency=4))
    await cancel_now.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    in_flight = {r.key for r in await journal.rows(state="sent")}
    assert "R-00006" in in_flight
    spy.after.clear()
    report = await ab.push(ledger, items, journal=journal, concurrency=4)
    assert report.counts["failed"] == report.counts["unknown"] == report.counts["conflict"] == 0
    resolved = {o.key for o in report.by_outcome("already_present")}
    assert "R-00006" in resolved and resolved <= in_flight
    assert all(n == 1 for n in spy.count("create_invoice").values())
    assert len([i async for i in ledger.invoices.list()]) == 40
    assert {r.state for r in await journal.rows()} == {JournalState.DONE}


async def test_without_a_look_up_in_flight_registrations_are_unknown_and_never_resent(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    ledger.adapter.capabilities = frozenset(ab.Capability) - {ab.Capability.REGISTRATION_LOOKUP}  # type: ignore[misc]
    spy = Spy(ledger)
    stalled: set[str] = set()
    settled: list[str] = []
    cancel_now = asyncio.Event()

    def check() -> None:
        if len(stalled) == 2 and len(settled) == 2:
            cancel_now.set()

    async def stall(key: str, item: Any) -> None:
        if key in ("pay-1", "pay-2"):
            stalled.add(key)
            check()
            await block_forever(key, item)

    def progress(outcome: ItemOutcome) -> None:
        settled.append(outcome.outcome)
        check()

    spy.after["submit_registration"] = stall
    items = [_registration(f"pay-{i}") for i in range(4)]
    task = asyncio.ensure_future(ab.push(ledger, items, journal=journal, concurrency=4, on_progress=progress))
    await cancel_now.wait()  # pay-0 and pay-3 are done, pay-1 and pay-2 landed and wait for their answers
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    spy.after.clear()
    spy.calls.clear()
    report = await ab.push(ledger, items, journal=journal)
    assert [o.outcome for o in report.outcomes] == ["skipped", "unknown", "unknown", "skipped"]
    assert isinstance(report.outcomes[1].error, ab.WriteOutcomeUnknown) and spy.calls == []
    again = await ab.push(ledger, items, journal=journal)
    assert [o.outcome for o in again.outcomes] == ["skipped", "unknown", "unknown", "skipped"] and spy.calls == []
    await journal.resolve(ItemKey(ledger_key(ledger), "registration", "pay-1"), "done")
    await journal.resolve(ItemKey(ledger_key(ledger), "registration", "pay-2"), "absent")
    settled = await ab.push(ledger, items, journal=journal)
    assert [o.outcome for o in settled.outcomes] == ["skipped", "skipped", "created", "skipped"]
    assert spy.calls == [("submit_registration", "pay-2")]


async def test_a_definite_failure_is_sent_again_by_the_next_push(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    first = await ab.push(ledger, [invoice(0, "K-0000")], journal=journal)  # its customer does not exist
    (failed,) = first.outcomes
    assert (failed.outcome, failed.state) == ("failed", JournalState.FAILED)
    assert isinstance(failed.error, ab.ValidationError)
    row = await journal.row(ItemKey(ledger_key(ledger), "invoice", "R-00000"))
    assert row is not None and "K-0000" in (row.last_error or "")
    second = await ab.push(ledger, [customer(0), invoice(0, "K-0000")], journal=journal)
    assert [o.outcome for o in second.outcomes] == ["created", "created"]


async def test_invoices_of_a_customer_that_failed_are_not_sent(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    spy = Spy(ledger)

    async def refuse(key: str, _item: Any) -> None:
        if key == "K-0001":
            raise ab.Unprocessable("refused", backend="memory", status=422)

    spy.before["upsert_customer"] = refuse
    report = await ab.push(ledger, invoices_with_customers(4, 2), journal=journal)
    by_key = {o.key: o for o in report.outcomes}
    assert by_key["K-0001"].outcome == "failed" and by_key["R-00001"].outcome == "failed"
    blocked = by_key["R-00003"].error
    assert isinstance(blocked, ab.ValidationError) and blocked.fields == ("customer_number",)
    assert spy.count("create_invoice") == {"R-00000": 1, "R-00002": 1}
    assert await journal.row(ItemKey(ledger_key(ledger), "invoice", "R-00001")) is None


async def test_a_refused_repeat_of_a_key_does_not_block_what_depends_on_its_first_occurrence(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    first = invoice(0, "K-0000")
    items = [attrs.evolve(first, title="repeat"), first, _payment("R-00000", "BANK-1"), customer(0)]
    report = await ab.push(ledger, items, journal=journal)
    assert [o.outcome for o in report.outcomes] == ["created", "failed", "created", "created"]


async def test_the_stored_error_text_is_redacted(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    spy = Spy(ledger)

    async def leak(_key: str, _item: Any) -> None:
        raise ab.Unprocessable("refused GET /x?api_key=S3CRET-4711&page=2", backend="memory", status=400)

    spy.before["upsert_customer"] = leak
    await ab.push(ledger, [customer(0)], journal=journal)
    (row,) = await journal.rows()
    assert row.state is JournalState.FAILED and row.last_error is not None
    assert "S3CRET" not in row.last_error and "api_key=***" in row.last_error


async def test_two_pushes_of_the_same_items_at_once_send_each_item_once(ledger: ab.Ledger, tmp_path: Path) -> None:
    spy = Spy(ledger)
    items = invoices_with_customers(30, 3)
    async with SqliteJournal(tmp_path / "j.sqlite3") as first, SqliteJournal(tmp_path / "j.sqlite3") as second:
        reports = await asyncio.gather(
            ab.push(ledger, items, journal=first, concurrency=4), ab.push(ledger, items, journal=second, concurrency=4)
        )
    assert all(n == 1 for n in spy.count("create_invoice").values()) and len(spy.count("create_invoice")) == 30
    for index in range(30):
        assert sorted(r.outcomes[index].outcome for r in reports) in (
            ["created", "skipped"], ["created", "unknown"],
        )  # fmt: skip


async def test_report_counts_have_exactly_the_six_keys_and_convert_to_json(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    report = await ab.push(ledger, [], journal=journal)
    assert set(report.counts) == {"created", "already_present", "skipped", "failed", "unknown", "conflict"}
    assert json.loads(report.to_json()) == {
        "ledger": ledger_key(ledger),
        "counts": dict(report.counts),
        "ok": True,
        "items": [],
    }


async def test_journal_as_a_path_is_opened_and_closed_by_push(ledger: ab.Ledger, tmp_path: Path) -> None:
    path = tmp_path / "by-path.sqlite3"
    report = await ab.push(ledger, [customer(0)], journal=str(path), ledger_key="acme")
    assert report.ledger == "acme" and report.counts["created"] == 1
    async with SqliteJournal(path) as reopened:
        (row,) = await reopened.rows(ledger="acme")
    assert row.state is JournalState.DONE


async def test_a_bad_concurrency_or_ledger_key_is_refused(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    with pytest.raises(ab.ValidationError) as bad:
        await ab.push(ledger, [], journal=journal, concurrency=0)
    assert bad.value.fields == ("concurrency",)
    with pytest.raises(ab.ValidationError) as key:
        await ab.push(ledger, [], journal=journal, ledger_key=" ")
    assert key.value.fields == ("ledger_key",)
    with pytest.raises(ab.ConfigurationError):
        await ab.push(ledger, [], journal="https://example.com/journal")


async def test_the_default_ledger_key_names_the_books_and_no_secret() -> None:
    async with ab.connect(
        "runmyaccounts", tenant="muster", api_key="S3CRET-4711", base_url="https://u:pw@rma.example/api/latest/clients/"
    ) as rma:
        key = ledger_key(rma)
    assert key == "runmyaccounts|rma.example/api/latest/clients|tenant=muster"


async def test_memory_ledgers_are_the_same_books_only_when_they_share_a_store() -> None:
    store = MemoryStore()
    async with ab.connect("memory", store=store) as one, ab.connect("memory", store=store) as same, \
            ab.connect("memory") as other:  # fmt: skip
        assert ledger_key(one) == ledger_key(same) != ledger_key(other)
        assert ledger_key(one).startswith("memory|company=Memory AG|store=")


async def test_amounts_written_with_more_or_fewer_decimals_are_the_same_item(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    def pushed(price: str, amount: str) -> list[Any]:
        bill = invoice(0, "K-0000")
        bill = attrs.evolve(bill, lines=[attrs.evolve(bill.lines[0], unit_price=Decimal(price), quantity=Decimal("1"))])
        paid = ab.Payment(invoice_number="R-00000", date=DAY, amount=Decimal(amount), account="1020")  # no reference
        return [customer(0), bill, paid]

    first = await ab.push(ledger, pushed("100.50", "50.00"), journal=journal)
    spy = Spy(ledger)
    again = await ab.push(ledger, pushed("100.5", "5E+1"), journal=journal)  # as another exporter writes them
    assert [o.outcome for o in first.outcomes] == ["created"] * 3
    assert [o.outcome for o in again.outcomes] == ["skipped"] * 3 and spy.calls == []
    assert len([p async for p in ledger.payments.list(invoice_number="R-00000")]) == 1


async def test_a_write_still_being_processed_after_the_run_died_is_awaited_not_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ab.connect("memory", write_settle_delay=30) as ledger:
        await ledger.customers.upsert(customer(0))
        await ledger.invoices.create(invoice(0, "K-0000"))
        server_create = ledger.adapter.create_payment
        spy = Spy(ledger)
        finish, arrived = asyncio.Event(), asyncio.Event()
        processing: list[asyncio.Future[Any]] = []

        async def received(_key: str, item: Any) -> None:  # the backend got it and is still working on it ...
            async def land_later() -> None:
                await finish.wait()
                await server_create(item)

            processing.append(asyncio.ensure_future(land_later()))
            arrived.set()
            await block_forever(_key, item)  # ... when the run is cancelled (or killed)

        waited: list[float] = []

        async def time_passes(seconds: float) -> None:
            waited.append(seconds)
            finish.set()
            await processing[0]

        monkeypatch.setattr("accounting_bridge.sync.actions.sleeper", lambda _ledger: time_passes)
        spy.before["create_payment"] = received
        items = [_payment("R-00000", "BANK-1")]
        async with SqliteJournal(tmp_path / "j.sqlite3") as journal:
            task = asyncio.ensure_future(ab.push(ledger, items, journal=journal))
            await arrived.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            spy.before.clear()
            report = await ab.push(ledger, items, journal=journal)
            finish.set()
            await processing[0]
        (outcome,) = report.outcomes
        assert outcome.outcome == "already_present" and outcome.backend_id
        assert len([p async for p in ledger.payments.list(invoice_number="R-00000")]) == 1
        assert len(waited) == 1 and 50 < waited[0] <= 60  # the settle time (2 x 30 s) less the row's age


async def test_a_push_cancelled_twice_ends_its_run_only_after_every_send_has_unwound(
    ledger: ab.Ledger, tmp_path: Path
) -> None:
    spy = Spy(ledger)
    sending, unwinding = asyncio.Event(), asyncio.Event()
    still_sending = False
    run_ended_while_sending: list[bool] = []

    async def slow_to_unwind(_key: str, _item: Any) -> None:  # e.g. a transport closing its connection
        nonlocal still_sending
        still_sending = True
        sending.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            unwinding.set()
            for _ in range(20):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0)
            still_sending = False
            raise

    class Watched(SqliteJournal):
        async def end_run(self, owner: str) -> None:
            run_ended_while_sending.append(still_sending)
            await super().end_run(owner)

    spy.before["create_invoice"] = slow_to_unwind
    async with Watched(tmp_path / "j.sqlite3") as journal:
        task = asyncio.ensure_future(ab.push(ledger, invoices_with_customers(1, 1), journal=journal))
        await sending.wait()
        task.cancel()
        await unwinding.wait()
        task.cancel()  # a second cancel (a timeout and a shutdown at once) must not cut the wait for the first short
        with pytest.raises(asyncio.CancelledError):
            await task
    assert run_ended_while_sending == [False]


async def test_a_registration_is_looked_up_around_its_own_date(ledger: ab.Ledger, journal: SqliteJournal) -> None:
    spy = Spy(ledger)

    async def lost_answer(key: str, _item: Any) -> None:
        raise ab.WriteOutcomeUnknown("the answer was lost", backend="memory", reference=key)

    spy.after["submit_registration"] = lost_answer
    items = [_registration("payroll-2024-05")]
    assert [o.outcome for o in (await ab.push(ledger, items, journal=journal)).outcomes] == ["unknown"]
    spy.after.clear()
    asked: list[Any] = []
    find = ledger.adapter.find_registration

    async def recorded(reference: str, *, date: Any = None) -> Any:
        asked.append((reference, date))
        return await find(reference, date=date)

    ledger.adapter.find_registration = recorded  # type: ignore[method-assign]
    report = await ab.push(ledger, items, journal=journal)
    assert [o.outcome for o in report.outcomes] == ["already_present"]
    assert asked == [("payroll-2024-05", DAY)]  # Run my Accounts searches only days around the date it is given


async def test_the_default_ledger_key_is_the_same_with_or_without_the_default_port() -> None:
    keys = set()
    for base_url in ("https://RMA.example/api/latest/clients/", "https://rma.example:443/api/latest/clients"):
        async with ab.connect("runmyaccounts", tenant="muster", api_key="k", base_url=base_url) as rma:
            keys.add(ledger_key(rma))
    assert keys == {"runmyaccounts|rma.example/api/latest/clients|tenant=muster"}


async def test_an_invoice_without_status_and_one_marked_open_are_the_same_item(
    ledger: ab.Ledger, journal: SqliteJournal
) -> None:
    bill = invoice(0, "K-0000")
    assert bill.status is None
    first = await ab.push(ledger, [customer(0), bill], journal=journal)
    spy = Spy(ledger)
    again = await ab.push(ledger, [customer(0), attrs.evolve(bill, status=ab.InvoiceStatus.OPEN)], journal=journal)
    assert [o.outcome for o in first.outcomes] == ["created"] * 2
    assert [o.outcome for o in again.outcomes] == ["skipped"] * 2 and spy.calls == []
