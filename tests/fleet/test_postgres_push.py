"""Acceptance of issue 12: two processes pushing overlapping batches of 500 invoices through one PostgreSQL
journal send every invoice exactly once (the row locks of `PostgresJournal.claim` serialise them)."""

from __future__ import annotations

import json
import uuid

import psycopg

from ..sync import processes

INVOICES, CUSTOMERS = 500, 50  # _pusher.py pushes SIZE invoices with SIZE/10 customers, the same in both


def _fresh_database(postgres_url: str) -> str:
    """A database of its own (every Python of the CI run uses the same server): its URL."""
    name = f"fleet_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + "/" + name


def test_two_processes_push_overlapping_batches_once(postgres_url: str) -> None:
    journal = _fresh_database(postgres_url)
    with processes.server("_rma_server.py") as (_server, settings):
        arguments = ("runmyaccounts", json.dumps(settings), journal, str(INVOICES))
        first = processes.pusher("_pusher.py", *arguments)
        second = processes.pusher("_pusher.py", *arguments)
        counts = [processes.finish(first), processes.finish(second)]
        stats = processes.http_stats(settings)
    assert stats["invoices"] == [f"R-{i:05d}" for i in range(INVOICES)]  # each number once in the books
    assert stats["duplicate_creates"] == 0  # and never a second create of a number that had landed
    assert sum(c["created"] for c in counts) == INVOICES + CUSTOMERS  # each item sent by one process only
    assert sum(c["failed"] + c["conflict"] for c in counts) == 0
    with psycopg.connect(journal) as connection:
        states = connection.execute("SELECT state, count(*) FROM accounting_bridge.items GROUP BY state").fetchall()
    assert states == [("done", INVOICES + CUSTOMERS)]
