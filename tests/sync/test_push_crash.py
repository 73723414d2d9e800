"""Acceptance of issue 10: 1,000 invoices with their customers pushed to a Run my Accounts sandbox in another
process — interrupted five times by ``kill -9`` of the pushing process; interrupted five times by task
cancellation; with the sandbox dropping 5 % of the connections after committing — then pushed to completion: every
invoice is in the sandbox exactly once, no create was ever repeated, every journal row is `done`.

The ledger POSTs an invoice without looking its number up first (``invoice_write_first``), so a push that sent a
number again would show in the sandbox's ``duplicate_creates``; the adapter's own look-up would hide it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import accounting_bridge as ab
from accounting_bridge.sync import ItemOutcome, SqliteJournal

from . import processes
from .workload import invoices_with_customers

INVOICES, CUSTOMERS = 1000, 100  # _pusher.py pushes SIZE invoices with SIZE/10 customers
ALL_INVOICES = [f"R-{i:05d}" for i in range(INVOICES)]


def _moments(seed: int, low: int, high: int) -> list[int]:
    return sorted(random.Random(seed).sample(range(low, high), 5))


def _invoices_done(journal: Path) -> int:
    return processes.journal_count(journal, "kind = 'invoice' AND state = 'done'")


def _assert_complete(counts: dict[str, int], stats: dict[str, Any], journal: Path) -> None:
    assert counts["failed"] == counts["unknown"] == counts["conflict"] == 0, counts
    assert sum(counts.values()) == INVOICES + CUSTOMERS
    assert stats["invoices"] == ALL_INVOICES  # each number once (the books key invoices by number)
    assert stats["duplicate_creates"] == 0  # and no create was ever sent for a number that had landed
    assert processes.journal_count(journal, "state = 'done'") == INVOICES + CUSTOMERS
    assert processes.journal_count(journal, "1") == INVOICES + CUSTOMERS


def test_kill_9_at_five_moments_then_a_rerun_pushes_every_invoice_exactly_once(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    in_flight_at_kills = []
    with processes.server("_rma_server.py") as (_server, settings):
        arguments = ("runmyaccounts", json.dumps(settings), str(journal), str(INVOICES))
        for moment in _moments(seed=20261130, low=50, high=700):  # >= 300 left: the poll sees it
            run = processes.pusher("_pusher.py", *arguments)
            target = max(moment, _invoices_done(journal) + 16)  # this run, too, gets to send
            processes.wait_until(
                lambda target=target: (
                    _invoices_done(journal) >= target and processes.journal_count(journal, "state = 'sent'") > 0
                ),
                run,
                f"{target} invoices done",
            )
            processes.kill_9(run)
            in_flight_at_kills.append(processes.journal_count(journal, "state IN ('pending', 'sent')"))
        counts = processes.finish(processes.pusher("_pusher.py", *arguments))
        stats = processes.http_stats(settings)
    assert sum(in_flight_at_kills) > 0  # the kills did cut sends short
    _assert_complete(counts, stats, journal)


@contextlib.asynccontextmanager
async def _rma(settings: dict[str, Any]) -> AsyncIterator[ab.Ledger]:
    async with ab.connect(
        "runmyaccounts",
        base_url=settings["base_url"],
        tenant=settings["tenant"],
        api_key=settings["api_key"],
        write_settle_delay=0.05,
        invoice_write_first=True,  # POST first: a resend of a number that landed is seen by the sandbox
    ) as ledger:
        yield ledger


async def test_cancel_at_five_moments_then_a_rerun_pushes_every_invoice_exactly_once(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    items = invoices_with_customers(INVOICES, CUSTOMERS)
    with processes.server("_rma_server.py") as (_server, settings):
        async with _rma(settings) as ledger:
            for moment in _moments(seed=1130, low=20, high=200):
                await _push_cancelled_after(ledger, items, journal, moment)
            report = await ab.push(ledger, items, journal=journal)
        stats = await asyncio.to_thread(processes.http_stats, settings)
    _assert_complete(dict(report.counts), stats, journal)


async def test_with_5_percent_of_answers_dropped_after_commit_a_push_and_a_rerun_push_every_invoice_exactly_once(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite3"
    items = invoices_with_customers(INVOICES, CUSTOMERS)
    with processes.server("_rma_server.py", "--drop-percent", "5", "--seed", "7") as (_server, settings):
        async with _rma(settings) as ledger:
            first = await ab.push(ledger, items, journal=journal)
            rerun = await ab.push(ledger, items, journal=journal)
        stats = await asyncio.to_thread(processes.http_stats, settings)
    assert stats["dropped"] > 0
    assert first.counts["failed"] == first.counts["conflict"] == 0, first.counts
    assert rerun.counts["skipped"] == INVOICES + CUSTOMERS - first.counts["unknown"]
    _assert_complete(dict(rerun.counts), stats, journal)


async def _push_cancelled_after(ledger: ab.Ledger, items: list[Any], journal: Path, settled: int) -> None:
    """A push cancelled as the `settled`-th item of this run is settled (while others are in flight)."""
    seen = 0
    enough = asyncio.Event()

    def progress(_outcome: ItemOutcome) -> None:
        nonlocal seen
        seen += 1
        if seen == settled:
            enough.set()

    async with SqliteJournal(journal) as opened:
        task = asyncio.ensure_future(ab.push(ledger, items, journal=opened, on_progress=progress))
        waiter = asyncio.ensure_future(enough.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        assert not task.done(), "the push ended before the moment to cancel it"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
