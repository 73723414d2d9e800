"""What is particular to SqliteJournal: the file (WAL, durable), schema versions and migration, run liveness across
processes, and `open_journal`."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from accounting_bridge import ConfigurationError
from accounting_bridge.sync import Decision, ItemKey, SqliteJournal, open_journal
from accounting_bridge.sync.sqlite import SCHEMA_VERSION

ITEM = ItemKey("rma:muster", "invoice", "R-1")

VERSION_1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE items (
    ledger TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    content_hash TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, backend_id TEXT, updated_at TEXT NOT NULL, owner TEXT,
    PRIMARY KEY (ledger, kind, key)
) WITHOUT ROWID;
CREATE TABLE checkpoints (feed TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
INSERT INTO items VALUES ('rma:muster', 'invoice', 'R-1', 'h1', 'done', 1, NULL, '77', '2026-11-30T10:00:00+00:00', NULL);
"""


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


async def test_a_new_file_is_wal_durable_and_at_the_current_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "journal.sqlite3"
    async with SqliteJournal(path) as journal:
        await journal.save_checkpoint("feed", "1")
    assert _query(path, "PRAGMA journal_mode") == [("wal",)]
    assert _query(path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert SCHEMA_VERSION == 2


async def test_a_version_1_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(VERSION_1)
    async with SqliteJournal(path) as journal:
        row = await journal.row(ITEM)
        owner = await journal.begin_run()
        assert (await journal.claim(owner, ITEM, "h1")).decision is Decision.SKIP
    assert row is not None and row.backend_id == "77"
    assert _query(path, "SELECT version FROM schema_version") == [(2,)]
    assert ("items_by_state",) in _query(path, "SELECT name FROM sqlite_master WHERE type = 'index'")


async def test_a_file_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);"
        )
    journal = SqliteJournal(path)
    with pytest.raises(ConfigurationError, match=r"schema version 99.*upgrade accounting_bridge"):
        await journal.open()
    with pytest.raises(ConfigurationError, match="schema version 99"):
        await journal.rows()
    await journal.close()
    assert _query(path, "SELECT name FROM sqlite_master") == [("schema_version",)]


HOLDER = """
    import asyncio, sys
    from accounting_bridge.sync import ItemKey, SqliteJournal

    async def main():
        journal = SqliteJournal(sys.argv[1])
        owner = await journal.begin_run()
        claim = await journal.claim(owner, ItemKey("rma:muster", "invoice", "R-1"), "h1")
        print(claim.decision.value, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())
"""


async def test_a_row_of_a_live_run_in_another_process_is_busy_and_free_once_that_process_is_killed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(HOLDER), str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout is not None and (await holder.stdout.readline()).strip() == b"send"
    async with SqliteJournal(path) as journal:
        owner = await journal.begin_run()
        assert (await journal.claim(owner, ITEM, "h1")).decision is Decision.BUSY
        holder.kill()  # SIGKILL: nothing of the holder's cleanup runs
        await holder.wait()
        assert (await journal.claim(owner, ITEM, "h1")).decision is Decision.SEND  # it was pending: never sent
        await journal.end_run(owner)
    assert list((tmp_path / "journal.sqlite3-runs").glob("*.lock")) == []  # the dead run's lock file is tidied


def test_open_journal_takes_a_journal_a_path_or_a_postgresql_url(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "a.sqlite3")
    assert open_journal(journal) is journal
    by_text = open_journal(str(tmp_path / "b.sqlite3"))
    by_path = open_journal(tmp_path / "c.sqlite3")
    assert isinstance(by_text, SqliteJournal) and isinstance(by_path, SqliteJournal)
    assert by_path.path == tmp_path / "c.sqlite3"
    with pytest.raises(ConfigurationError, match="postgresql:// URL"):
        open_journal("https://example.com/journal")
    with pytest.raises(ConfigurationError, match="not int"):
        open_journal(42)  # type: ignore[arg-type]


def test_importing_the_sdk_opens_no_journal_driver() -> None:
    code = (
        "import sys, accounting_bridge as ab; ab.push; "
        "print(sorted(m for m in ('psycopg', 'accounting_bridge.sync.postgres', 'redis', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert out.strip() == "[]"


async def test_a_file_that_is_no_database_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a SQLite database, it is a note" * 100)
    with pytest.raises(ConfigurationError, match=r"journal .*journal\.sqlite3"):
        await SqliteJournal(path).open()
