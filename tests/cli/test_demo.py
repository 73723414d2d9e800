"""`accounting-bridge demo` and `capabilities`, as a new user runs them."""

from __future__ import annotations

import json

from accounting_bridge.demo import OPERATIONS
from accounting_bridge.registry import available, load
from accounting_bridge.sandbox import available_sandboxes


def test_the_demo_runs_the_round_trip_on_every_backend(cli) -> None:
    result = cli("demo")

    assert result.returncode == 0, result.stdout + result.stderr
    header = next(line for line in result.stdout.splitlines() if "operation" in line)
    for backend in ["memory", *available_sandboxes()]:
        assert backend in header
    assert len(available_sandboxes()) >= 4
    for operation in OPERATIONS:
        assert any(line.strip("│┃ ").startswith(operation) for line in result.stdout.splitlines()), operation
    assert "FAILED" not in result.stdout and result.stderr == ""
    assert "Capabilities" in result.stdout


def test_capabilities_as_json(cli) -> None:
    result = cli("capabilities", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {name: sorted(c.value for c in load(name).capabilities) for name in available()}
