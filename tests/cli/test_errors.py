"""What a user sees when something is wrong: one line on stderr naming what to fix, the documented exit code."""

from __future__ import annotations

import os
from pathlib import Path

USAGE = 64


def _one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("accounting-bridge: error: "), stderr
    return lines[0]


def test_a_profile_naming_an_unknown_backend_is_a_usage_error(cli, tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text('[acme]\nbackend = "quickbooks"\n')

    result = cli("list", "acme", "invoices", "--profiles", "profiles.toml")

    assert result.returncode == USAGE
    line = _one_line_error(result.stderr)
    assert "profile 'acme'" in line and "quickbooks" in line and "installed adapters" in line


def test_a_missing_secret_variable_is_named_without_sending_anything(cli, tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        '[acme]\nbackend = "smallinvoice"\nclient_id = "acme-app"\n'
        'client_secret = { env = "AB_TEST_ACME_SECRET" }\nbase_url = "http://127.0.0.1:9"\n'
    )
    (tmp_path / "invoices.jsonl").write_text("{}\n")

    result = cli("push", "acme", "invoices", "invoices.jsonl", "--profiles", "profiles.toml")

    assert result.returncode == USAGE
    line = _one_line_error(result.stderr)
    assert "AB_TEST_ACME_SECRET" in line and "client_secret" in line and "is not set" in line
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "data").exists()  # no journal was even created


def test_a_missing_default_profiles_file_says_where_it_was_looked_for(cli, env: dict[str, str]) -> None:
    result = cli("list", "acme", "invoices")

    assert result.returncode == USAGE
    line = _one_line_error(result.stderr)
    expected = os.path.join(env["XDG_CONFIG_HOME"], "accounting-bridge", "profiles.toml")
    assert expected in line and "--profiles" in line


def test_usage_errors_exit_64_with_one_line(cli) -> None:
    result = cli("push", "acme", "receipts", "x.json")

    assert result.returncode == USAGE
    line = _one_line_error(result.stderr)
    assert "receipts" in line and "--help" in line


def test_without_rich_the_command_says_how_to_install_the_extra(cli, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    (blocked / "rich").mkdir(parents=True)
    (blocked / "rich" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'rich'\", name='rich')\n")
    without_rich = {"PYTHONPATH": str(blocked)}

    result = cli("capabilities", extra_env=without_rich)
    helped = cli("--help", extra_env=without_rich)

    assert result.returncode == USAGE
    line = _one_line_error(result.stderr)
    assert "pip install 'accounting-bridge[cli]'" in line
    assert helped.returncode == 0 and "push" in helped.stdout
