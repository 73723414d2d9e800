"""Ctrl-C during `accounting-bridge push`: the journal stays consistent and the same command, run again, completes
with every invoice in the books exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import accounting_bridge as ab
from accounting_bridge.cli.sandbox_command import profile_table
from accounting_bridge.sandbox import create
from accounting_bridge.sync import JournalState, SqliteJournal

from .helpers import SCRIPT, scratch_env

PROFILE = "sandbox-smallinvoice"
INVOICES = 12


async def _push(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(SCRIPT), "push", PROFILE, "invoices", *args, "--concurrency", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )


async def _first_created(process: asyncio.subprocess.Process) -> str:
    """The first progress line that shows an invoice created (stdout is a pipe: plain lines)."""
    assert process.stdout is not None
    while True:
        line = (await process.stdout.readline()).decode()
        assert line, "the push ended before it created anything"
        if line.startswith("push invoices: ") and "created" in line:
            return line


async def _numbers_in_books(sandbox: ab.sandbox.Sandbox) -> list[str]:
    async with ab.connect("smallinvoice", base_url=sandbox.base_url, **sandbox.connect_settings()) as ledger:
        return [invoice.number async for invoice in ledger.invoices.list() if invoice.number.startswith("INT-")]


async def test_ctrl_c_during_a_push_leaves_the_journal_consistent_and_a_rerun_completes(tmp_path: Path) -> None:
    sandbox = create("smallinvoice")
    url = await sandbox.start()
    try:
        env = scratch_env(tmp_path)
        (tmp_path / "profiles.toml").write_text(profile_table(sandbox, url))
        async with ab.connect("smallinvoice", base_url=url, **sandbox.connect_settings()) as ledger:
            customer = await ledger.customers.upsert(ab.Customer(
                number="K-INT", name="Interrupt AG",
                address=ab.Address(street="Gasse 1", postcode="3000", city="Bern", country="CH"),
            ))
        numbers = [f"INT-{n:02}" for n in range(1, INVOICES + 1)]
        (tmp_path / "invoices.jsonl").write_text("".join(json.dumps({
            "number": number, "customer_number": customer.number, "issue_date": "2026-11-20",
            "due_date": "2026-12-20", "lines": [{"description": "Work", "unit_price": "100.00"}],
        }) + "\n" for number in numbers))
        files = [str(tmp_path / "invoices.jsonl"), "--profiles", str(tmp_path / "profiles.toml")]
        journal = str(tmp_path / "journal.sqlite3")

        interrupted = await _push(env, *files, "--journal", journal)
        await asyncio.wait_for(_first_created(interrupted), 30)
        # From now on every request is told to wait 30 s for its rate-limit window: the push is surely still
        # running when Ctrl-C arrives (the sandbox serves on this loop: nothing ran between the line and here).
        sandbox.faults.rate_limit_next(count=10**6, reset=30)
        interrupted.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(interrupted.wait(), 30) == 130
        assert interrupted.stderr is not None
        assert b"interrupted" in await interrupted.stderr.read()
        sandbox.faults.clear()

        async with SqliteJournal(journal) as opened:
            rows = await opened.rows()
        states = {row.key: row.state for row in rows}
        assert len(states) == len(rows) and set(states) <= set(numbers)
        assert set(states.values()) <= {JournalState.DONE, JournalState.SENT, JournalState.PENDING}
        done = {key for key, state in states.items() if state is JournalState.DONE}
        assert 1 <= len(done) < INVOICES  # it had begun, and it was interrupted before the end
        in_books = await _numbers_in_books(sandbox)
        assert done <= set(in_books)  # what the journal calls done is in the books (and nothing twice)
        assert len(in_books) == len(set(in_books))

        rerun = await _push(env, *files, "--journal", journal, "--json")
        stdout, stderr = await asyncio.wait_for(rerun.communicate(), 60)
        assert rerun.returncode == 0, stderr.decode()
        report = json.loads(stdout)
        assert report["counts"]["failed"] == report["counts"]["unknown"] == report["counts"]["conflict"] == 0
        assert sorted(await _numbers_in_books(sandbox)) == numbers  # every invoice exactly once
    finally:
        await sandbox.stop()
