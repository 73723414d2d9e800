"""Fixtures of the sync tests: `journal_factory` builds journals over one store per test, for every journal kind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from accounting_bridge.sync import Journal, SqliteJournal

JournalFactory = Callable[[], Journal]

JOURNAL_KINDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server (from .ci/run, or started for this session; see tests/fleet/servers.py)."""
    from ..fleet import servers

    with servers.postgres_url() as url:
        yield url


@pytest.fixture(params=JOURNAL_KINDS)
async def journal_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JournalFactory]:
    """`journal_factory()` → a new, unopened journal over the test's one store (call it twice for two "processes").
    Every journal it built is closed after the test."""
    built: list[Journal] = []

    def make_sqlite() -> Journal:
        journal = SqliteJournal(tmp_path / "journal.sqlite3")
        built.append(journal)
        return journal

    def make_postgres() -> Journal:
        from accounting_bridge.sync.postgres import PostgresJournal

        journal = PostgresJournal(request.getfixturevalue("postgres_url"), schema=schema)
        built.append(journal)
        return journal

    schema = f"test_{uuid.uuid4().hex}"
    makers = {"sqlite": make_sqlite, "postgres": make_postgres}
    yield makers[request.param]
    for journal in built:
        await journal.close()
