"""Messages that say what to fix (issue 15 items 7, 8, 9): closest-match suggestions, the credential settings to
check (never their values), and the caller's own method name with a pointer to `ledger.capabilities`."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest

import accounting_bridge as ab
from accounting_bridge.ledger import Capability

SECRET = "s3cr3t-Value-42"


# --- item 7: did you mean ------------------------------------------------------------------------------------------


def test_unknown_setting_suggests_the_closest_name() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("memory", max_concurency=4)
    assert "did you mean `max_concurrency`?" in str(info.value)
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("runmyaccounts", tenant="t", api_key=SECRET, wire_fromat="xml")
    assert "did you mean `wire_format`?" in str(info.value) and SECRET not in str(info.value)


def test_unknown_backend_suggests_the_closest_name() -> None:
    for typo, meant in (("smallinvoce", "smallinvoice"), ("RunMyAccounts", "runmyaccounts"), ("memmory", "memory")):
        with pytest.raises(ab.ConfigurationError) as info:
            ab.connect(typo)
        assert f"did you mean `{meant}`?" in str(info.value)


def test_no_suggestion_when_nothing_is_close() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("memory", xyzzy=1)
    assert "did you mean" not in str(info.value) and "accepted:" in str(info.value)


# --- item 8: a refused credential names the settings to check --------------------------------------------------------

RMA_URL = "http://rma.test/api/latest/clients/"
MR_URL = "http://mr.test/api/v1"
SI_URL = "http://si.test/v2"


async def test_refused_api_key_names_runmyaccounts_settings(mock_http: Any) -> None:
    mock_http.get(re.compile(r"http://rma\.test/.*"), status=401, body="Unauthorized", repeat=True)
    async with ab.connect("runmyaccounts", tenant="muster", api_key=SECRET, base_url=RMA_URL, max_retries=0) as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            await ledger.customers.get("K-1")
    assert "check the settings api_key and tenant" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


async def test_a_key_run_my_accounts_refuses_with_403_names_its_settings(mock_http: Any) -> None:
    body = {"error": "Zugriff verweigert: API-Schlüssel oder Mandant ungültig."}  # RMA's answer to a wrong key
    mock_http.get(re.compile(r"http://rma\.test/.*"), status=403, payload=body, repeat=True)
    async with ab.connect("runmyaccounts", tenant="muster", api_key=SECRET, base_url=RMA_URL, max_retries=0) as ledger:
        with pytest.raises(ab.PermissionDenied) as info:
            await ledger.customers.get("K-1")
    assert "check the settings api_key and tenant" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_a_403_elsewhere_is_not_blamed_on_the_credential() -> None:
    denied = ab.PermissionDenied("feature not in plan", backend="smallinvoice", status=403)
    assert "check the settings" not in str(denied)


async def test_refused_login_names_multiregnskab_settings(mock_http: Any) -> None:
    mock_http.post(f"{MR_URL}/login", status=401, payload={"message": "Not authorized"}, repeat=True)
    settings = {"username": "bogholder@example.dk", "password": SECRET, "base_url": MR_URL, "max_retries": 0}
    async with ab.connect("multiregnskab", **settings) as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            await ledger.companies()
    assert "check the settings username and password" in str(info.value) and SECRET not in str(info.value)


async def test_refused_client_names_smallinvoice_settings(mock_http: Any) -> None:
    body = {"error": "invalid_client", "error_description": "Client authentication failed"}
    mock_http.post(f"{SI_URL}/auth/access-tokens", status=401, payload=body, repeat=True)
    settings = {"client_id": "app", "client_secret": SECRET, "base_url": SI_URL, "max_retries": 0}
    async with ab.connect("smallinvoice", **settings) as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            await ledger.customers.get("K-1")
    assert "check the settings client_id and client_secret" in str(info.value) and SECRET not in str(info.value)


async def test_refused_api_key_names_multiregnskab_s2s_settings(mock_http: Any) -> None:
    mock_http.get(re.compile(r"http://s2s\.test/.*"), status=401, payload={"message": "Not authorized"}, repeat=True)
    settings = {"api_key": SECRET, "company": 1002, "base_url": "http://s2s.test/open/systemapi/v1", "max_retries": 0}
    async with ab.connect("multiregnskab-s2s", **settings) as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            [c async for c in ledger.customers.list()]
    assert "check the settings api_key and company" in str(info.value) and SECRET not in str(info.value)


# --- item 9: the caller's method, and ledger.capabilities ------------------------------------------------------------


async def test_unsupported_names_the_callers_method_and_points_to_capabilities() -> None:
    async with ab.connect("smallinvoice", client_id="app", client_secret=SECRET) as ledger:
        with pytest.raises(ab.UnsupportedOperation) as info:
            await ledger.companies()
        assert str(info.value).startswith("[smallinvoice] ledger.companies() is not supported")
        assert "ledger.capabilities" in str(info.value) and info.value.method == "ledger.companies()"
        assert info.value.operation == "companies.list"
        with pytest.raises(ab.UnsupportedOperation, match=r"ledger\.registrations\.submit\(\)"):
            await ledger.registrations.submit(
                ab.Registration(
                    date=dt.date(2026, 11, 30),
                    description="x",
                    lines=[ab.PostingLine(account="1", amount=Decimal(1)), ab.PostingLine(account="2", amount=Decimal(-1))],
                )
            )
        with pytest.raises(ab.UnsupportedOperation, match=r"ledger\.bank_transactions\.list\(\)"):
            ledger.bank_transactions.list()


def test_every_capability_has_a_callers_spelling() -> None:
    spelled = {c: ab.UnsupportedOperation(c.value, backend="x").method for c in Capability}
    assert spelled[Capability.COMPANIES_LIST] == "ledger.companies()" and spelled[Capability.RAW] == "ledger.raw()"
    assert spelled[Capability.REGISTRATION_LOOKUP] == "ledger.registrations.find()"
    assert all(m.startswith("ledger.") and m.endswith("()") for m in spelled.values())


async def test_the_status_rule_refusal_names_the_method_and_points_to_capabilities() -> None:
    line = ab.InvoiceLine(description="x", quantity=Decimal(1), unit_price=Decimal(1))
    draft = ab.Invoice(number="R-1", customer_number="K-1", issue_date=dt.date(2026, 11, 30), lines=[line],
                       status=ab.InvoiceStatus.DRAFT)  # fmt: skip
    async with ab.connect("runmyaccounts", tenant="t", api_key=SECRET) as ledger:
        with pytest.raises(ab.UnsupportedOperation) as info:
            await ledger.invoices.create(draft)
    assert info.value.method == "ledger.invoices.create()" and "ledger.capabilities" in str(info.value)
    assert "it has no drafts" in str(info.value)
