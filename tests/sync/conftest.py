"""Fixtures of the sync tests: `journal_factory` builds journals over one store per test, for every journal kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from accounting_bridge.sync import Journal, SqliteJournal

JournalFactory = Callable[[], Journal]

JOURNAL_KINDS = ["sqlite"]


@pytest.fixture(params=JOURNAL_KINDS)
async def journal_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JournalFactory]:
    """`journal_factory()` → a new, unopened journal over the test's one store (call it twice for two "processes").
    Every journal it built is closed after the test."""
    built: list[Journal] = []

    def make_sqlite() -> Journal:
        journal = SqliteJournal(tmp_path / "journal.sqlite3")
        built.append(journal)
        return journal

    makers = {"sqlite": make_sqlite}
    yield makers[request.param]
    for journal in built:
        await journal.close()
