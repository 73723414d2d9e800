"""Acceptance of issue 10: a push of Multi-Regnskab registrations (the backend cannot look a registration up by
its reference) killed mid-way; the rerun reports the in-flight ones `unknown` and sends none of them again."""

from __future__ import annotations

import json
from pathlib import Path

from . import processes

SIZE = 120


def test_a_killed_push_of_registrations_leaves_the_in_flight_ones_unknown_and_never_resends_them(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite3"
    with processes.server("_mr_server.py") as (server, settings):
        arguments = ("multiregnskab", json.dumps(settings), str(journal), str(SIZE))
        run = processes.pusher("_pusher.py", *arguments)
        processes.wait_until(
            lambda: processes.journal_count(journal, "state = 'done'") >= 30
            and processes.journal_count(journal, "state = 'sent'") > 0,
            run,
            "30 registrations done",
        )
        processes.kill_9(run)
        in_flight = processes.journal_count(journal, "state = 'sent'")
        done_before = processes.journal_count(journal, "state = 'done'")
        first = processes.finish(processes.pusher("_pusher.py", *arguments))
        second = processes.finish(processes.pusher("_pusher.py", *arguments))
        stats = processes.ask(server, "stats")
    assert in_flight > 0
    assert first == {"created": SIZE - done_before - in_flight, "already_present": 0, "skipped": done_before,
                     "failed": 0, "unknown": in_flight, "conflict": 0}  # fmt: skip
    assert second == {**first, "created": 0, "skipped": SIZE - in_flight}
    assert processes.journal_count(journal, "state = 'unknown'") == in_flight
    assert max(stats["posts"].values()) == 1  # not one registration was sent twice
    assert len(stats["posts"]) >= SIZE - in_flight  # every other one was sent (the unknown ones at most once)
    assert stats["registrations"] == len(stats["posts"])
