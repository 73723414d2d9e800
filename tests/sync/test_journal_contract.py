"""The Journal contract, for every journal kind (`journal_factory` is parametrized in conftest)."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from accounting_bridge import ConfigurationError, ValidationError
from accounting_bridge.sync import Decision, ItemKey, Journal, JournalState

from .conftest import JournalFactory

INVOICE = ItemKey("rma:muster", "invoice", "R-1")


async def _opened(factory: JournalFactory) -> Journal:
    journal = factory()
    await journal.open()
    return journal


async def _sent_then_orphaned(factory: JournalFactory, item: ItemKey = INVOICE, content: str = "h1") -> Journal:
    """A row left `sent` by a run that is over (as after a crash)."""
    journal = await _opened(factory)
    owner = await journal.begin_run()
    assert (await journal.claim(owner, item, content)).decision is Decision.SEND
    assert await journal.mark(owner, item, JournalState.SENT)
    await journal.end_run(owner)
    return journal


async def test_a_new_item_is_sent_and_recorded_pending_for_its_run(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    claim = await journal.claim(owner, INVOICE, "h1")
    assert claim.decision is Decision.SEND
    assert claim.row is not None
    assert (claim.row.state, claim.row.attempts, claim.row.content_hash, claim.row.owner) == (
        JournalState.PENDING, 0, "h1", owner,
    )


async def test_done_with_the_same_hash_is_skipped_and_other_content_is_a_conflict(
    journal_factory: JournalFactory,
) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    await journal.claim(owner, INVOICE, "h1")
    assert await journal.mark(owner, INVOICE, JournalState.SENT)
    assert await journal.mark(owner, INVOICE, JournalState.DONE, backend_id="77")
    assert (await journal.claim(owner, INVOICE, "h1")).decision is Decision.SKIP
    conflict = await journal.claim(owner, INVOICE, "h2")
    assert conflict.decision is Decision.CONFLICT
    row = await journal.row(INVOICE)
    assert row is not None
    assert (row.state, row.content_hash, row.backend_id, row.owner) == (JournalState.DONE, "h1", "77", None)


async def test_an_item_a_live_run_holds_is_busy_for_another_run(journal_factory: JournalFactory) -> None:
    first, second = await _opened(journal_factory), await _opened(journal_factory)
    owner_a, owner_b = await first.begin_run(), await second.begin_run()
    assert (await first.claim(owner_a, INVOICE, "h1")).decision is Decision.SEND
    assert (await second.claim(owner_b, INVOICE, "h1")).decision is Decision.BUSY
    assert await first.mark(owner_a, INVOICE, JournalState.SENT)
    assert (await second.claim(owner_b, INVOICE, "h1")).decision is Decision.BUSY


async def test_a_pending_row_of_an_ended_run_is_sent_again_it_never_went_out(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    await journal.claim(owner, INVOICE, "h1")
    await journal.end_run(owner)
    other = await journal.begin_run()
    claim = await journal.claim(other, INVOICE, "h2")  # never sent: new content is fine
    assert claim.decision is Decision.SEND
    assert claim.row is not None
    assert (claim.row.attempts, claim.row.content_hash, claim.row.owner) == (0, "h2", other)


async def test_a_sent_row_of_an_ended_run_is_resolved_never_resent(journal_factory: JournalFactory) -> None:
    journal = await _sent_then_orphaned(journal_factory)
    owner = await journal.begin_run()
    claim = await journal.claim(owner, INVOICE, "h1")
    assert claim.decision is Decision.RESOLVE
    assert claim.row is not None
    assert (claim.row.state, claim.row.owner, claim.row.attempts) == (JournalState.SENT, owner, 1)


async def test_a_sent_row_claimed_with_other_content_is_a_conflict(journal_factory: JournalFactory) -> None:
    journal = await _sent_then_orphaned(journal_factory)
    owner = await journal.begin_run()
    assert (await journal.claim(owner, INVOICE, "h2")).decision is Decision.CONFLICT


async def test_an_unknown_row_is_resolved_by_the_next_run(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    await journal.claim(owner, INVOICE, "h1")
    await journal.mark(owner, INVOICE, JournalState.SENT)
    assert await journal.mark(owner, INVOICE, JournalState.UNKNOWN, error="read-back failed")
    row = await journal.row(INVOICE)
    assert row is not None
    assert (row.state, row.owner, row.last_error) == (JournalState.UNKNOWN, None, "read-back failed")
    next_run = await journal.begin_run()
    assert (await journal.claim(next_run, INVOICE, "h1")).decision is Decision.RESOLVE


async def test_a_failed_row_is_sent_again_also_with_corrected_content(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    await journal.claim(owner, INVOICE, "h1")
    await journal.mark(owner, INVOICE, JournalState.SENT)
    await journal.mark(owner, INVOICE, JournalState.FAILED, error="422 refused")
    claim = await journal.claim(owner, INVOICE, "h2")
    assert claim.decision is Decision.SEND
    assert claim.row is not None
    assert (claim.row.attempts, claim.row.content_hash, claim.row.last_error) == (1, "h2", "422 refused")
    await journal.mark(owner, INVOICE, JournalState.SENT)
    assert (await journal.row(INVOICE)).attempts == 2  # type: ignore[union-attr]
    await journal.mark(owner, INVOICE, JournalState.DONE)
    done = await journal.row(INVOICE)
    assert done is not None
    assert done.last_error is None


async def test_a_conflict_row_stays_a_conflict_until_resolved(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    await journal.claim(owner, INVOICE, "h1")
    await journal.mark(owner, INVOICE, JournalState.CONFLICT, error="exists with other content")
    assert (await journal.claim(owner, INVOICE, "h1")).decision is Decision.CONFLICT
    await journal.resolve(INVOICE, "absent")
    assert (await journal.claim(owner, INVOICE, "h1")).decision is Decision.SEND


async def test_a_run_that_lost_the_row_cannot_mark_it(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    await journal.claim(owner, INVOICE, "h1")
    await journal.end_run(owner)
    assert not await journal.mark(owner, INVOICE, JournalState.SENT)
    assert not await journal.mark("someone-else", ItemKey("x", "invoice", "nothing"), JournalState.DONE)
    row = await journal.row(INVOICE)
    assert row is not None
    assert row.state is JournalState.PENDING


async def test_resolve_done_and_absent(journal_factory: JournalFactory) -> None:
    journal = await _sent_then_orphaned(journal_factory)
    other = ItemKey("rma:muster", "invoice", "R-2")
    await _sent_then_orphaned(journal_factory, other)
    done = await journal.resolve(INVOICE, "done")
    assert (done.state, done.owner) == (JournalState.DONE, None)
    absent = await journal.resolve(other, "absent")
    assert absent.state is JournalState.PENDING
    owner = await journal.begin_run()
    assert (await journal.claim(owner, INVOICE, "h1")).decision is Decision.SKIP
    assert (await journal.claim(owner, other, "h1")).decision is Decision.SEND


async def test_resolve_refuses_a_missing_row_a_bad_outcome_and_a_row_a_live_run_holds(
    journal_factory: JournalFactory,
) -> None:
    journal = await _opened(journal_factory)
    with pytest.raises(ValidationError) as missing:
        await journal.resolve(INVOICE, "done")
    assert missing.value.fields == ("key",)
    owner = await journal.begin_run()
    await journal.claim(owner, INVOICE, "h1")
    with pytest.raises(ValidationError) as bad:
        await journal.resolve(INVOICE, "maybe")  # type: ignore[arg-type]
    assert bad.value.fields == ("outcome",)
    with pytest.raises(ConfigurationError, match="live push"):
        await journal.resolve(INVOICE, "done")


async def test_rows_are_listed_by_state_ledger_and_kind(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    items = [ItemKey("a", "invoice", "R-2"), ItemKey("a", "invoice", "R-1"), ItemKey("b", "customer", "K-1")]
    for item in items:
        await journal.claim(owner, item, "h")
    await journal.mark(owner, items[0], JournalState.DONE)
    assert [r.key for r in await journal.rows()] == ["R-1", "R-2", "K-1"]
    assert [r.key for r in await journal.rows(state=JournalState.DONE)] == ["R-2"]
    assert [r.key for r in await journal.rows(state="pending", ledger="a")] == ["R-1"]
    assert [r.key for r in await journal.rows(kind="customer")] == ["K-1"]
    assert (await journal.rows())[0].to_dict()["state"] == "pending"
    with pytest.raises(ValidationError) as bad:
        await journal.rows(state="lost")
    assert bad.value.fields == ("state",)


async def test_many_concurrent_claims_of_one_item_send_it_once(journal_factory: JournalFactory) -> None:
    journals = [await _opened(journal_factory) for _ in range(2)]
    owners = [await j.begin_run() for j in journals]
    claims = await asyncio.gather(*(journals[i % 2].claim(owners[i % 2], INVOICE, "h1") for i in range(20)))
    assert sorted(c.decision.value for c in claims).count("send") == 1


async def test_rows_survive_closing_and_reopening(journal_factory: JournalFactory) -> None:
    journal = await _sent_then_orphaned(journal_factory)
    await journal.close()
    reopened = await _opened(journal_factory)
    row = await reopened.row(INVOICE)
    assert row is not None
    assert row.state is JournalState.SENT
    assert row.updated_at is not None and row.updated_at.tzinfo is not None


async def test_checkpoints_are_saved_per_feed(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    assert await journal.checkpoint("acme-payments") is None
    await journal.save_checkpoint("acme-payments", '{"since": "2026-11-01"}')
    await journal.save_checkpoint("acme-payments", '{"since": "2026-11-02"}')
    await journal.save_checkpoint("other", "x")
    assert await journal.checkpoint("acme-payments") == '{"since": "2026-11-02"}'
    assert await journal.checkpoint("other") == "x"
    again = await _opened(journal_factory)
    assert await again.checkpoint("acme-payments") == '{"since": "2026-11-02"}'


async def test_a_resolve_claim_keeps_the_time_the_row_was_marked_sent(journal_factory: JournalFactory) -> None:
    journal = await _sent_then_orphaned(journal_factory)
    sent = await journal.row(INVOICE)
    assert sent is not None and sent.updated_at is not None
    while datetime.datetime.now(datetime.timezone.utc) <= sent.updated_at:
        pass  # the clock moves on (microseconds): a claim that set the time would show a later one
    claim = await journal.claim(await journal.begin_run(), INVOICE, "h1")
    assert claim.decision is Decision.RESOLVE and claim.row is not None
    assert claim.row.updated_at == sent.updated_at  # push's settle-time re-check counts from the send
    row = await journal.row(INVOICE)
    assert row is not None and row.updated_at == sent.updated_at


async def test_a_row_resolved_absent_keeps_no_backend_id_of_what_is_not_there(journal_factory: JournalFactory) -> None:
    journal = await _opened(journal_factory)
    owner = await journal.begin_run()
    other = ItemKey("rma:muster", "invoice", "R-2")
    for item in (INVOICE, other):
        await journal.claim(owner, item, "h1")
        await journal.mark(owner, item, JournalState.UNKNOWN, backend_id="77", error="read-back failed")
    absent = await journal.resolve(INVOICE, "absent")
    done = await journal.resolve(other, "done")
    assert (absent.state, absent.backend_id) == (JournalState.PENDING, None)
    assert (done.state, done.backend_id) == (JournalState.DONE, "77")
