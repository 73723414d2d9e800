"""The command line's pure parts, in process: default folders, the printed profile, reading push input, plain
progress lines and the exit code of a push."""

from __future__ import annotations

import io
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from accounting_bridge.cli.exits import ExitCode
from accounting_bridge.cli.inputs import Malformed, Record, read_records
from accounting_bridge.cli.output import Output
from accounting_bridge.cli.paths import default_journal, default_profiles
from accounting_bridge.cli.push_command import Row, exit_code
from accounting_bridge.cli.toml_table import toml_table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def test_default_folders_follow_xdg_and_fall_back_to_the_home_folder(tmp_path: Path) -> None:
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_DATA_HOME": str(tmp_path / "d"), "HOME": str(tmp_path)}
    assert default_profiles(xdg) == tmp_path / "c" / "accounting-bridge" / "profiles.toml"
    assert default_journal(xdg) == tmp_path / "d" / "accounting-bridge" / "journal.sqlite3"
    if sys.platform.startswith("linux"):
        home = {"HOME": str(tmp_path)}
        assert default_profiles(home) == tmp_path / ".config" / "accounting-bridge" / "profiles.toml"
        assert default_journal(home) == tmp_path / ".local" / "share" / "accounting-bridge" / "journal.sqlite3"


def test_the_printed_profile_table_reads_back_as_written() -> None:
    values = {"sandbox": True, "backend": "smallinvoice", "base_url": "http://127.0.0.1:1/v2", "company": 1002,
              "client_secret": 'a "quoted" \\ secret\x7f with ünïcode', "scopes": ["contact", "invoice"], "x": None}

    text = toml_table("sandbox-smallinvoice", values)

    assert text.endswith("\n\n")
    assert tomllib.loads(text) == {"sandbox-smallinvoice": {k: v for k, v in values.items() if v is not None}}


def test_a_json_array_names_each_record_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "payments.json"
    path.write_text(
        '[{"invoice_number": "R-1", "date": "2026-11-20", "amount": 495.10, "account": "1090"},\n'
        '\n'
        ' {"invoice_number": "R-2",\n'
        '  "date": "2026-11-20", "amount": "x", "account": "1090"},\n'
        ' "not an object"]\n'
    )

    first, second, third = read_records(str(path), "payments")

    assert isinstance(first, Record) and first.line == 1 and first.model.amount == Decimal("495.10")
    assert isinstance(second, Malformed) and second.line == 3 and second.problem.startswith("amount: ")
    assert isinstance(third, Malformed) and third.line == 5 and "expected a JSON object" in third.problem


def test_json_lines_skip_blank_lines_and_name_broken_json_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_text('{"number": "K-1", "name": "A AG"}\n\n{"number": "K-2", "name": }\n{"number": "K-3", "nam": "C"}\n')

    records = read_records(str(path), "customers")

    assert [type(r).__name__ for r in records] == ["Record", "Malformed", "Malformed"]
    assert records[1].line == 3 and "column 27" in records[1].problem  # type: ignore[union-attr]
    assert records[2].line == 4 and "nam: unknown field" in records[2].problem  # type: ignore[union-attr]


def test_plain_progress_prints_a_line_per_tenth_and_at_the_end() -> None:
    stdout = io.StringIO()
    with Output(stdout=stdout).progress(25, "push invoices") as update:
        for done in range(1, 26):
            update(done, {"created": done, "failed": 0})

    lines = stdout.getvalue().splitlines()
    assert len(lines) == 10  # 3, 5, 8, 10, 13, 15, 18, 20, 23 and 25 of 25
    assert lines[0] == "push invoices: 3/25 (created 3)" and lines[-1] == "push invoices: 25/25 (created 25)"


@pytest.mark.parametrize(
    ("outcomes", "unavailable", "code"),
    [
        (["created", "skipped", "already_present"], False, ExitCode.OK),
        (["created", "failed"], False, ExitCode.FAILED),
        (["failed", "unknown"], False, ExitCode.UNSETTLED),
        (["created", "conflict"], False, ExitCode.UNSETTLED),
        (["failed", "conflict"], True, ExitCode.UNAVAILABLE),
    ],
)
def test_the_exit_code_of_a_push(outcomes: list[str], unavailable: bool, code: ExitCode) -> None:
    rows = [Row(line=n, kind="invoice", key=str(n), outcome=o, unavailable=unavailable and o == "failed")
            for n, o in enumerate(outcomes, 1)]
    assert exit_code(rows) == code


def test_the_default_journal_folder_is_private_to_its_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from accounting_bridge.cli.push_command import journal_spec

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    journal = Path(journal_spec(None))
    assert journal.parent == tmp_path / "data" / "accounting-bridge"
    assert journal.parent.stat().st_mode & 0o777 == 0o700  # a journal holds business data


def test_an_unknown_profile_names_the_closest_one(tmp_path: Path) -> None:
    import argparse

    from accounting_bridge.cli.app import Context
    from accounting_bridge.cli.exits import CliError
    from accounting_bridge.cli.ledgers import open_ledger

    (tmp_path / "p.toml").write_text('[acme]\nbackend = "memory"\n[globex]\nbackend = "memory"\n')
    args = argparse.Namespace(profiles=str(tmp_path / "p.toml"), profile="acmee")
    with pytest.raises(CliError, match="did you mean `acme`"):
        open_ledger(Context(args=args, out=Output(json_mode=True)))


def test_a_debug_traceback_never_shows_a_loaded_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from accounting_bridge.cli import ledgers
    from accounting_bridge.cli.app import main

    def leaky_connect(backend: str, **settings: object) -> None:
        raise RuntimeError(f"could not use {settings['client_secret']}")

    (tmp_path / "p.toml").write_text(
        '[acme]\nbackend = "smallinvoice"\nclient_id = "acme-app"\nclient_secret = { env = "AB_T_SECRET" }\n'
    )
    monkeypatch.setenv("AB_T_SECRET", "Sup3r-S3cret-Value")
    monkeypatch.setattr(ledgers, "connect", leaky_connect)

    code = main(["--debug", "list", "acme", "customers", "--profiles", str(tmp_path / "p.toml")])

    err = capsys.readouterr().err
    assert code == ExitCode.FAILED and "Traceback" in err and "could not use ***" in err
    assert "Sup3r-S3cret-Value" not in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["list", "acme", "invoices", "--since", "2026-13-01"], "--since"),
        (["list", "acme", "invoices", "--since", "2026-12-01", "--until", "2026-11-01"], "--until"),
        (["list", "acme", "customers", "--status", "paid"], "--status"),
        (["list", "acme", "invoices", "--status", "payed"], "--status"),
        (["capabilities", "smallinvoic"], "did you mean `smallinvoice`"),
    ],
)
def test_bad_filters_and_names_exit_64_naming_what_to_fix(
    argv: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from accounting_bridge.cli.app import main

    (tmp_path / "p.toml").write_text('[acme]\nbackend = "memory"\n')

    code = main([*argv, "--profiles", str(tmp_path / "p.toml")] if argv[0] == "list" else argv)

    err = capsys.readouterr().err.strip()
    assert code == ExitCode.USAGE and len(err.splitlines()) == 1 and named in err, err
