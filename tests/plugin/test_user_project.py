"""The pytest plugin as a user meets it: a project of their own whose tests ask for our fixtures, run by pytest in
a subprocess (the plugin arrives through the `pytest11` entry point, nothing imported by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_TESTS = '''
import asyncio

import pytest

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep

ACME = ab.Customer(
    number="K-100", name="Acme AG",
    address=ab.Address(street="Seestrasse 1", postcode="8002", city="Zürich", country="CH"),
)


async def sync_customers(ledger, customers):  # the integration code under test
    for customer in customers:
        await ledger.customers.upsert(customer)


async def test_customers_reach_every_backend(ab_ledger, ab_sandbox, ab_backend):
    await sync_customers(ab_ledger, [ACME])
    assert (await ab_ledger.customers.get("K-100")).name == "Acme AG"
    assert ab_sandbox.backend == ab_backend


@pytest.mark.ab_backends("smallinvoice")
async def test_a_server_error_is_retried(ab_ledger, ab_sandbox):
    ab_ledger.adapter.transport.sleep = FakeSleep()
    ab_sandbox.faults.fail_next(503, method="GET", path="/contacts")
    assert [c async for c in ab_ledger.customers.list()] == []
    assert ab_sandbox.request_count(status=503) == 1


@pytest.mark.parametrize("ab_backend", ["runmyaccounts"])
def test_the_session_sandbox_keeps_its_books(ab_ledger_session, ab_sandbox_session):
    asyncio.run(sync_customers(ab_ledger_session, [ACME]))
    asyncio.run(sync_customers(ab_ledger_session, [ACME]))  # a second loop, the same ledger and sandbox


@pytest.mark.parametrize("ab_backend", ["runmyaccounts"])
def test_a_later_test_sees_the_session_books(ab_ledger_session):
    async def names():
        return [c.name async for c in ab_ledger_session.customers.list()]

    assert "Acme AG" in asyncio.run(names())
'''


def test_a_users_tests_get_a_sandbox_and_a_ledger_per_backend(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    (tmp_path / "test_my_integration.py").write_text(USER_TESTS)

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "no:randomly", "-W", "error"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout  # 4 backends + 1 + 2
    for backend in ("runmyaccounts", "smallinvoice", "multiregnskab", "multiregnskab-s2s"):
        assert f"test_customers_reach_every_backend[{backend}] PASSED" in result.stdout


def test_importing_the_package_or_the_plugin_loads_neither_rich_nor_the_sandboxes() -> None:
    code = (
        "import sys, accounting_bridge, accounting_bridge.pytest_plugin\n"
        "heavy = [m for m in ('rich', 'accounting_bridge.cli', 'accounting_bridge.sandbox', 'aiohttp.web')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(  # noqa: S603 - the interpreter running this suite
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
