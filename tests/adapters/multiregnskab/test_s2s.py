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


# --- write outcomes: an answer that cannot be read, partial bank submissions ----------------------------------------


async def test_unreadable_answer_after_registration_stored_is_outcome_unknown(
    s2s: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    sandbox.faults.add("POST", "/suggestedRegistrations", api="s2s", malformed=True)  # stored, then 200 "<html>oops"
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await s2s.registrations.submit(registration(attachments=2))
    assert info.value.reference == "payroll-2026-11"
    [stored] = sandbox.company(1002).registrations.values()
    kept = [f["xid"] for f in stored["filesToAttachXids"]]
    assert all(str(xid) in str(info.value) for xid in kept) and "kept" in str(info.value)
    assert not sandbox.calls_to("DELETE", "/archiveFile", api="s2s")  # the registration references them
    assert all(xid in sandbox.company(1002).files for xid in kept)
    assert len(sandbox.calls_to("POST", "/suggestedRegistrations", api="s2s")) == 1


async def test_unreadable_customer_answer_is_resolved_by_lookup(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.faults.add("POST", "/customers", api="s2s", malformed=True)
    created = await s2s.customers.upsert(customer())
    [(xid, row)] = sandbox.company(1002).customers.items()
    assert created.id == str(xid) and row["customerName"] == "Salary ApS"
    assert len(sandbox.calls_to("POST", "/customers", api="s2s")) == 1


def bank(account: str, reference: str, amount: str = "10") -> ab.BankTransaction:
    return ab.BankTransaction(
        account=account, date=_dt.date(2026, 11, 3), amount=amount, text=f"tekst {reference}", reference=reference
    )


def second_bank_account(sandbox: MultiRegnskabSandbox) -> None:
    sandbox.company(1002).bank_accounts[10028] = {"xid": 10028, "name": "Opsparing", "currency": "DKK"}


def stored_postings(sandbox: MultiRegnskabSandbox) -> dict[str, int]:
    postings = sandbox.company(1002).bank_postings
    return {p["externalRef"]: p["xid"] for rows in postings.values() for p in rows if "externalRef" in p}


async def test_bank_partial_failure_names_what_was_stored(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    second_bank_account(sandbox)
    items = [bank("10027", "r1"), bank("99999", "r2"), bank("10027", "r3"), bank("10028", "r4")]
    with pytest.raises(ab.NotFound) as info:  # account 99999 does not exist: a definite refusal of that group
        await s2s.bank_transactions.submit(items)
    error: Any = info.value
    stored = stored_postings(sandbox)
    assert set(stored) == {"r1", "r3"}  # the first group landed; the third was never sent
    assert [(t.reference, t.id) for t in error.stored_transactions] == [
        ("r1", str(stored["r1"])),
        ("r3", str(stored["r3"])),
    ]
    assert [t.reference for t in error.not_stored_transactions] == ["r2", "r4"]
    assert error.unknown_transactions == []
    text = str(info.value)
    assert "r1" in text and str(stored["r1"]) in text and "r2" in text and "r4" in text
    assert len(sandbox.calls_to("POST", "/bankPostings", api="s2s")) == 2


async def test_bank_ambiguous_second_group_is_outcome_unknown_naming_the_first(
    s2s: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    second_bank_account(sandbox)
    sandbox.faults.add("POST", "/bankPostings", api="s2s", status=502, skip=1)  # the first account passes
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await s2s.bank_transactions.submit([bank("10027", "r1"), bank("10028", "r2")])
    error: Any = info.value
    stored = stored_postings(sandbox)
    assert [(t.reference, t.id) for t in error.stored_transactions] == [("r1", str(stored["r1"]))]
    assert [t.reference for t in error.unknown_transactions] == ["r2"]
    assert error.not_stored_transactions == []
    assert error.reference == "r2" and str(stored["r1"]) in str(info.value)


async def test_bank_acknowledgement_mismatch_is_outcome_unknown(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.faults.add("POST", "/bankPostings", api="s2s", answer={"bpList": [{"xid": 1}]})  # 2 stored, 1 acknowledged
    with pytest.raises(ab.WriteOutcomeUnknown, match="2 sent, 1 acknowledged") as info:
        await s2s.bank_transactions.submit([bank("10027", "r1"), bank("10027", "r2")])
    error: Any = info.value
    assert error.reference == "r1,r2"
    assert [t.reference for t in error.unknown_transactions] == ["r1", "r2"]
    assert error.stored_transactions == [] and error.not_stored_transactions == []
    assert set(stored_postings(sandbox)) == {"r1", "r2"}


async def test_bank_unreadable_answer_is_outcome_unknown(s2s: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    second_bank_account(sandbox)
    sandbox.faults.add("POST", "/bankPostings", api="s2s", malformed=True)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await s2s.bank_transactions.submit([bank("10027", "r1"), bank("10028", "r2")])
    error: Any = info.value
    assert [t.reference for t in error.unknown_transactions] == ["r1"]
    assert [t.reference for t in error.not_stored_transactions] == ["r2"]
    assert set(stored_postings(sandbox)) == {"r1"}
    assert len(sandbox.calls_to("POST", "/bankPostings", api="s2s")) == 1
