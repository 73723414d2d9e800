"""One piece of user code — the payroll example — submitted to Multi-Regnskab S2S and to Run my Accounts (gl),
each over real sockets against its sandbox. Only the chart of accounts differs between the two ledgers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge.examples.payroll import (
    DANISH_PAYROLL_ACCOUNTS,
    SAMPLE_PAYSLIPS,
    SWISS_PAYROLL_ACCOUNTS,
    PayrollAccounts,
    submit_monthly_payroll,
)
from accounting_bridge.testing import FakeSleep, minimal_pdf

PERIOD = dt.date(2026, 11, 30)
PDF = minimal_pdf("Payslips November 2026")
PAYSLIPS = SAMPLE_PAYSLIPS
DANISH_CHART = DANISH_PAYROLL_ACCOUNTS
SWISS_CHART = SWISS_PAYROLL_ACCOUNTS  # the Run my Accounts sandbox's chart, as the README's payroll table lists it


async def book_payroll(ledger: ab.Ledger, accounts: PayrollAccounts) -> ab.RegistrationRef:
    """The user's code: identical for every backend."""
    return await submit_monthly_payroll(ledger, period=PERIOD, payslips=PAYSLIPS, payslip_pdf=PDF, accounts=accounts)


def _quiet(ledger: ab.Ledger) -> ab.Ledger:
    ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
    return ledger


async def test_payroll_to_multiregnskab_s2s() -> None:
    async with MultiRegnskabSandbox() as sandbox:
        async with _quiet(ab.connect("multiregnskab-s2s", base_url=sandbox.s2s_url, api_key=sandbox.api_key, company=1002)) as ledger:
            ref = await book_payroll(ledger, DANISH_CHART)
        company = sandbox.company(1002)
        assert ref.reference == "payroll-2026-11"
        stored = company.registrations[int(str(ref.id))]
        amounts = [line["amount"] for line in stored["debitCreditlines"]]
        assert amounts == ["72500,00", "3200,00", "-20434,36", "-5672,00", "-4800,00", "-44793,64"]
        (attached,) = stored["filesToAttachXids"]
        assert company.files[attached["xid"]].attached_to == {int(str(ref.id))}


@pytest.mark.parametrize("wire_format", ["json", "xml"])
async def test_payroll_to_runmyaccounts_gl(wire_format: str) -> None:
    async with RmaSandbox(mandant="demo", api_key="rma-payroll-key-1234") as sandbox:
        settings: dict[str, Any] = {"tenant": "demo", "api_key": "rma-payroll-key-1234", "base_url": sandbox.base_url}
        async with _quiet(ab.connect("runmyaccounts", wire_format=wire_format, **settings)) as ledger:
            ref = await book_payroll(ledger, SWISS_CHART)
            booked = await ledger.adapter.account_transactions("x", since=PERIOD, until=PERIOD)  # type: ignore[attr-defined]
        assert ref.reference == "payroll-2026-11"
        assert len(sandbox.state.gl) == 1
        (beleg,) = sandbox.state.belege.values()
        assert beleg["file_name"] == "loensedler-2026-11.pdf"
        # read back through the adapter: the neutral sign of PostingLine (debit +), whole cents, the local date kept
        assert {(t.accno, str(t.amount)) for t in booked if t.reference == "payroll-2026-11"} == {
            ("5000", "72500.00"),
            ("5720", "3200.00"),
            ("2279", "-20434.36"),
            ("2270", "-5672.00"),
            ("2271", "-4800.00"),
            ("1091", "-44793.64"),
        }
        assert {t.date for t in booked} == {PERIOD}
