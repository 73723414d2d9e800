"""End to end: the `multiregnskab-s2s` adapter against the sandbox following the inferred S2S contract."""

from __future__ import annotations

import base64
import datetime as _dt
import logging
from decimal import Decimal
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab import S2SContract
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab

PDF = b"%PDF-1.4 payslip"


def registration(attachments: int = 1, reference: str = "payroll-2026-11") -> ab.Registration:
    return ab.Registration(
        date=_dt.date(2026, 11, 30),
        description="Løn november",
        lines=[ab.PostingLine(account="2210", amount="40000"), ab.PostingLine(account="8270", amount="-40000")],
        attachments=[
            ab.Document(filename=f"p{i}.pdf", content=PDF + bytes([i]), content_type="application/pdf")
            for i in range(attachments)
        ],
        reference=reference,
    )


def customer(number: str = "S-1") -> ab.Customer:
    return ab.Customer(
        number=number, name="Salary ApS", address=ab.Address(street="Vej 2", postcode="2100", city="København Ø")
    )


def test_capabilities(s2s: ab.Ledger) -> None:
    assert s2s.backend == "multiregnskab-s2s"
    assert s2s.capabilities == {
        ab.Capability.CUSTOMERS_LIST,
        ab.Capability.CUSTOMERS_GET,
        ab.Capability.CUSTOMERS_UPSERT,
        ab.Capability.BANK_TRANSACTIONS_SUBMIT,
        ab.Capability.REGISTRATIONS_SUBMIT,
        ab.Capability.RAW,
    }


async def test_unsupported_before_io(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    with pytest.raises(ab.UnsupportedOperation):
        await s2s.companies()
    with pytest.raises(ab.UnsupportedOperation):
        s2s.bank_transactions.list()
    assert not sandbox.calls


async def test_registration_with_attachment(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    ref = await s2s.registrations.submit(registration(attachments=2))
    assert ref.id is not None and ref.reference == "payroll-2026-11"
    stored = sandbox.company(1002).registrations[int(ref.id)]
    assert stored["companyXid"] == 1002
    assert stored["debitCreditlines"] == [
        {"accountNumber": "2210", "amount": "40000,00"},
        {"accountNumber": "8270", "amount": "-40000,00"},
    ]
    files = [sandbox.company(1002).files[f["xid"]] for f in stored["filesToAttachXids"]]
    assert [base64.b64decode(f.data["fileBodyBase64"]) for f in files] == [PDF + b"\0", PDF + b"\1"]
    assert all(f.attached_to == {int(ref.id)} for f in files)
    calls = [c for c in sandbox.calls if c.api == "s2s"]
    assert all(c.headers["X-Api-Key"] == sandbox.api_key for c in calls)
    assert "Authorization" not in calls[0].headers


async def test_registration_limits_before_io(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    with pytest.raises(ab.ValidationError, match="at most 3"):
        await s2s.registrations.submit(registration(attachments=4))
    assert not sandbox.calls


async def test_dropped_connection_after_commit(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.faults.add("POST", "/suggestedRegistrations", api="s2s", drop="after")
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await s2s.registrations.submit(registration())
    assert info.value.reference == "payroll-2026-11"
    assert len(sandbox.company(1002).registrations) == 1
    assert len(sandbox.calls_to("POST", "/suggestedRegistrations")) == 1


async def test_definite_failure_deletes_uploads(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    before = set(sandbox.company(1002).files)
    sandbox.faults.add("POST", "/suggestedRegistrations", status=409)
    with pytest.raises(ab.Conflict):
        await s2s.registrations.submit(registration(attachments=2))
    assert set(sandbox.company(1002).files) == before
    assert len(sandbox.calls_to("DELETE", "/archiveFile/1002/", api="s2s")) == 2


async def test_disabled_delete_leaves_files_and_warns(
    connect: Any, sandbox: MultiRegnskabSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(sandbox.company(1002).files)
    sandbox.faults.add("POST", "/suggestedRegistrations", status=400)
    async with connect.s2s(paths={"delete_file": ""}) as ledger:
        with caplog.at_level(logging.WARNING, logger="accounting_bridge"), pytest.raises(ab.Unprocessable):
            await ledger.registrations.submit(registration())
    assert len(set(sandbox.company(1002).files) - before) == 1
    assert "remain unattached" in caplog.text


async def test_customers(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    created = await s2s.customers.upsert(customer())
    assert created.id is not None and sandbox.company(1002).customers[int(created.id)]["customerName"] == "Salary ApS"
    assert [c.number async for c in s2s.customers.list()] == ["S-1"]
    assert (await s2s.customers.get("S-1")).address == ab.Address(
        street="Vej 2", postcode="2100", city="København Ø", country="DK"
    )
    await s2s.customers.upsert(customer())  # identical: no second create
    assert len(sandbox.company(1002).customers) == 1
    with pytest.raises(ab.NotFound):
        await s2s.customers.get("S-2")


async def test_bank_transactions_submit_and_read_back(
    s2s: ab.Ledger, connect: Any, sandbox: MultiRegnskabSandbox
) -> None:
    today = sandbox.today()
    items = [
        ab.BankTransaction(account="10027", date=today, amount="-1234.56", text="Løn udbetalt", reference="psd2-1"),
        ab.BankTransaction(
            account="10027", date=today, amount="99999.99", text="Indbetaling", counterparty="Kunde", reference="psd2-2"
        ),
    ]
    stored = await s2s.bank_transactions.submit(items)
    assert [t.id is not None for t in stored] == [True, True]
    body = sandbox.calls_to("POST", "/bankPostings", api="s2s")[0].body
    assert body["bankAccountXid"] == 10027 and body["companyXid"] == 1002
    assert [p["bankAmount"] for p in body["bpList"]] == ["-1234,56", "99999,99"]
    assert body["bpList"][1]["extraBankText"] == "Kunde" and body["bpList"][0]["externalRef"] == "psd2-1"
    async with connect.public() as public:  # the same books, read through the Public Client API
        seen = [t async for t in public.bank_transactions.list(since=today, until=today)]
    assert {(t.reference, t.amount) for t in seen} == {("psd2-1", Decimal("-1234.56")), ("psd2-2", Decimal("99999.99"))}


async def test_bank_transactions_validation_and_unknown_outcome(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    with pytest.raises(ab.ValidationError) as info:
        await s2s.bank_transactions.submit(
            [ab.BankTransaction(account="Driftskonto", date=_dt.date(2026, 1, 1), amount="1.001")]
        )
    assert set(info.value.fields) == {"transactions[0].account", "transactions[0].text", "transactions[0].amount"}
    sandbox.faults.add("POST", "/bankPostings", api="s2s", status=502)
    with pytest.raises(ab.WriteOutcomeUnknown) as unknown:
        await s2s.bank_transactions.submit(
            [ab.BankTransaction(account="10027", date=_dt.date(2026, 1, 1), amount="1", text="x", reference="r-9")]
        )
    assert unknown.value.reference == "r-9"
    assert len(sandbox.calls_to("POST", "/bankPostings", api="s2s")) == 1


async def test_wrong_key_and_wrong_company(connect: Any, sandbox: MultiRegnskabSandbox) -> None:
    async with connect.s2s(api_key="not-the-key-123") as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            [c async for c in ledger.customers.list()]
        assert "not-the-key-123" not in str(info.value)
    async with connect.s2s(company=1001) as ledger:
        with pytest.raises(ab.PermissionDenied):
            await ledger.customers.upsert(customer())


async def test_contract_overrides_without_code_changes(sleep: Any) -> None:
    overrides: dict[str, Any] = {
        "api_key_header": "Authorization",
        "api_key_prefix": "Bearer ",
        "paths": {"suggested_registrations": "/v2/suggestions", "upload_file": "/v2/files"},
        "fields": {"debitCreditlines": "debitCreditLines", "amount": "beloeb"},
    }
    contract = S2SContract().with_overrides(base_url="https://example.invalid/s2s/v9", **overrides)
    async with MultiRegnskabSandbox(contract=contract) as sb:
        assert sb.s2s_url.endswith("/s2s/v9")
        async with ab.connect(
            "multiregnskab-s2s", base_url=sb.s2s_url, api_key=sb.api_key, company="1002", **overrides
        ) as ledger:
            ref = await ledger.registrations.submit(registration())
        call = sb.calls_to("POST", "/v2/suggestions")[0]
        assert call.headers["Authorization"] == f"Bearer {sb.api_key}"
        assert call.body["debitCreditLines"][0] == {"accountNumber": "2210", "beloeb": "40000,00"}
        assert "debitCreditlines" not in call.body
        assert ref.id is not None and int(ref.id) in sb.company(1002).registrations


def test_settings_validation() -> None:
    with pytest.raises(ab.ConfigurationError, match="api_key"):
        ab.connect("multiregnskab-s2s", company=1)
    with pytest.raises(ab.ConfigurationError, match="company"):
        ab.connect("multiregnskab-s2s", api_key="k-12345", company="Tømrer")
    with pytest.raises(ab.ConfigurationError, match="unknown S2S path"):
        ab.connect("multiregnskab-s2s", api_key="k-12345", company=1, paths={"invoices": "/x"})
