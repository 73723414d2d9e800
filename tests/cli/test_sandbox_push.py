"""`accounting-bridge sandbox smallinvoice --port P` in one process; push, list, pull and profiles check against it
from others, each through the real console script with the profile the sandbox printed."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounting_bridge.sync.profiles import read_profiles

from .helpers import SCRIPT, free_port, scratch_env

PROFILE = "sandbox-smallinvoice"


def _read_profile(process: subprocess.Popen[bytes], deadline: float) -> str:
    """The sandbox's output up to the blank line that ends its profile table (read unbuffered, with a deadline)."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    data = b""
    while not re.search(rb"^\[sandbox-smallinvoice\]\n(.+\n)+\n", data, re.MULTILINE):
        if time.monotonic() > deadline or not selector.select(timeout=deadline - time.monotonic()):
            raise AssertionError(f"the sandbox printed no profile in time: {data!r}")
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"the sandbox ended early: {data!r}")
        data += chunk
    return data.decode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sandbox serving in its own process; yields the profiles file holding what it printed."""
    root = tmp_path_factory.mktemp("served")
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(SCRIPT), "sandbox", "smallinvoice", "--port", str(port), "--seed"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=scratch_env(root),
    )
    try:
        printed = _read_profile(process, time.monotonic() + 20)
        assert f"http://127.0.0.1:{port}" in printed
        profiles = root / "profiles.toml"
        profiles.write_text(printed)  # everything the command prints is TOML: saved as it is
        yield profiles
    finally:
        process.send_signal(signal.SIGTERM)  # a service manager stops it so (Ctrl-C is the README's case)
        assert process.wait(timeout=20) == 0


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def _invoices(cli, profiles: Path) -> list[str]:
    listed = cli("list", PROFILE, "invoices", "--profiles", str(profiles), "--json")
    assert listed.returncode == 0, listed.stderr
    return [invoice["number"] for invoice in _json(listed)]


def _invoice(number: str, customer: str, issue_date: str = "2026-11-20") -> str:
    return json.dumps({
        "number": number, "customer_number": customer, "issue_date": issue_date, "due_date": "2026-12-20",
        "lines": [{"description": "Consulting", "quantity": "2", "unit_price": "150.00"}],
    })


@pytest.fixture(scope="module")
def customer(served: Path) -> str:
    """A customer the seeded sandbox holds (read back through `list --json`)."""
    result = subprocess.run(  # noqa: S603 - our own console script
        [str(SCRIPT), "list", PROFILE, "customers", "--profiles", str(served), "--json"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    customers = json.loads(result.stdout)
    assert customers and all(isinstance(c["number"], str) for c in customers)
    number: str = customers[0]["number"]
    return number


def test_the_printed_profile_is_a_sandbox_table(served: Path) -> None:
    (profile,) = read_profiles(served).values()
    assert profile.name == PROFILE and profile.sandbox and profile.backend == "smallinvoice"
    assert profile.settings["base_url"].startswith("http://127.0.0.1:")


def test_push_creates_the_invoices_and_a_rerun_creates_nothing_new(
    cli, served: Path, customer: str, tmp_path: Path
) -> None:
    numbers = [f"CLI-{n}" for n in range(1, 6)]
    (tmp_path / "invoices.jsonl").write_text("".join(_invoice(n, customer) + "\n" for n in numbers))

    first = cli("push", PROFILE, "invoices", "invoices.jsonl", "--profiles", str(served))
    again = cli("push", PROFILE, "invoices", "invoices.jsonl", "--profiles", str(served), "--json")

    assert first.returncode == 0, first.stderr
    progress = [line for line in first.stdout.splitlines() if line.startswith("push invoices: ")]
    assert progress[-1] == "push invoices: 5/5 (created 5)"  # stdout is a pipe: plain lines, not a bar
    assert "\r" not in first.stdout and "\x1b[" not in first.stdout
    assert "created" in first.stdout and first.stderr == ""
    report = _json(again)
    assert again.returncode == 0 and report["exit_code"] == 0 and report["ok"] is True
    assert report["counts"]["created"] == 0 and report["counts"]["skipped"] == 5
    assert [item["line"] for item in report["items"]] == [1, 2, 3, 4, 5]
    listed = _invoices(cli, served)
    assert sorted(n for n in listed if n.startswith("CLI-")) == numbers  # each exactly once


def test_a_malformed_line_is_named_by_number_and_field_and_nothing_is_sent_for_it(
    cli, served: Path, customer: str, tmp_path: Path
) -> None:
    bad_date = _invoice("BAD-2", customer, issue_date="2026-13-01")
    lines = [_invoice("BAD-1", customer), bad_date, _invoice("BAD-3", customer)]
    (tmp_path / "invoices.json").write_text("[" + ",\n ".join(lines) + "]\n")  # a JSON array, a record per line

    result = cli("push", PROFILE, "invoices", "invoices.json", "--profiles", str(served), "--json")

    assert result.returncode == 1  # some failed
    report = _json(result)
    by_line = {item["line"]: item for item in report["items"]}
    assert by_line[2]["outcome"] == "failed" and by_line[2]["state"] is None
    assert "line 3" not in by_line[2]["error"]["message"]
    assert "line 2" in by_line[2]["error"]["message"] and "issue_date" in by_line[2]["error"]["message"]
    assert by_line[1]["outcome"] == by_line[3]["outcome"] == "created"
    assert "1 of 3 records failed" in result.stderr
    listed = _invoices(cli, served)
    assert "BAD-1" in listed and "BAD-3" in listed and "BAD-2" not in listed


def test_pull_hands_out_what_is_new_once(cli, served: Path) -> None:
    first = cli("pull", PROFILE, "invoices", "--profiles", str(served), "--json")
    second = cli("pull", PROFILE, "invoices", "--profiles", str(served), "--json")

    assert first.returncode == 0, first.stderr
    assert len(_json(first)) >= 1
    assert second.returncode == 0 and _json(second) == []  # the checkpoint moved when the first pull ended


def test_profiles_check_reports_each_profile_and_never_shows_a_secret(cli, served: Path, tmp_path: Path) -> None:
    text = served.read_text()
    wrong = text.replace(f"[{PROFILE}]", "[wrong-secret]").replace('"sandbox-secret"', '"wrong-secret-value-42"')
    assert wrong != text
    (tmp_path / "profiles.toml").write_text(text + wrong)

    result = cli("profiles", "check", "--profiles", "profiles.toml", "--debug")

    assert result.returncode == 69  # authentication refused
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "ok" in rows[PROFILE] and "FAILED" in rows["wrong-secret"]
    assert "wrong-secret-value-42" not in result.stdout + result.stderr
