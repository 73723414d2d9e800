"""The payroll example (user code in accounting_bridge/examples/payroll.py) submitted to multiregnskab-s2s, and to memory."""

from __future__ import annotations

import base64
import datetime as _dt
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab
from accounting_bridge.testing import minimal_pdf


def payslips(payroll: ModuleType) -> list[Any]:
    return list(payroll.SAMPLE_PAYSLIPS)


def test_journal_balances(payroll: ModuleType) -> None:
    reg = payroll.build_payroll_registration(
        period=_dt.date(2026, 11, 30), payslips=payslips(payroll), payslip_pdf=minimal_pdf("x")
    )
    amounts = {line.account: line.amount for line in reg.lines}
    assert amounts == {
        "2210": Decimal("72500.00"),  # gross wages
        "2230": Decimal("3200.00"),  # employer pension
        "8240": Decimal("-20434.36"),  # A-skat withheld
        "8250": Decimal("-5672.00"),  # AM-bidrag
        "8260": Decimal("-4800.00"),  # pension payable (employee + employer)
        "8270": Decimal("-44793.64"),  # net pay to the clearing account
    }
    assert sum(amounts.values()) == 0 and reg.reference == "payroll-2026-11"


async def test_payroll_to_multiregnskab_s2s(payroll: ModuleType, s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    pdf = minimal_pdf("Lønsedler november 2026")
    ref = await payroll.submit_monthly_payroll(
        s2s, period=_dt.date(2026, 11, 30), payslips=payslips(payroll), payslip_pdf=pdf
    )
    assert ref.reference == "payroll-2026-11" and ref.id is not None
    stored = sandbox.company(1002).registrations[int(ref.id)]
    assert stored["description"] == "Løn 2026-11 (2 medarbejdere)" and stored["date"] == "2026-11-30"
    assert stored["debitCreditlines"] == [
        {"accountNumber": "2210", "amount": "72500,00"},
        {"accountNumber": "2230", "amount": "3200,00"},
        {"accountNumber": "8240", "amount": "-20434,36"},
        {"accountNumber": "8250", "amount": "-5672,00"},
        {"accountNumber": "8260", "amount": "-4800,00"},
        {"accountNumber": "8270", "amount": "-44793,64"},
    ]
    (attached,) = stored["filesToAttachXids"]
    file = sandbox.company(1002).files[attached["xid"]]
    assert base64.b64decode(file.data["fileBodyBase64"]) == pdf
    assert file.data["contentType"] == "application/pdf" and file.data["fileName"] == "loensedler-2026-11.pdf"
    assert file.attached_to == {int(ref.id)} and not file.hidden


async def test_payroll_lost_answer_is_not_resubmitted(
    payroll: ModuleType, s2s: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    sandbox.faults.add("POST", "/suggestedRegistrations", api="s2s", drop="after")
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await payroll.submit_monthly_payroll(
            s2s, period=_dt.date(2026, 11, 30), payslips=payslips(payroll), payslip_pdf=minimal_pdf("x")
        )
    assert info.value.reference == "payroll-2026-11"
    assert len(sandbox.company(1002).registrations) == 1


async def test_same_user_code_on_another_backend(payroll: ModuleType) -> None:
    async with ab.connect("memory") as ledger:
        ref = await payroll.submit_monthly_payroll(
            ledger, period=_dt.date(2026, 11, 30), payslips=payslips(payroll), payslip_pdf=minimal_pdf("x")
        )
    assert ref.reference == "payroll-2026-11"
