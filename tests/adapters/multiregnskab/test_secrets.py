"""Secrets (password, tokens, refresh tokens, API key) never in logs, exception texts or reprs."""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab


def all_secrets(sandbox: MultiRegnskabSandbox) -> list[str]:
    values = [sandbox.password, sandbox.api_key]
    for token in sandbox.tokens.values():
        values += [token.access, token.refresh]
    return values


async def test_public_client_secrets_stay_out(
    connect: Any, sandbox: MultiRegnskabSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[str] = []
    store = ab.MemoryTokenStore()
    with caplog.at_level(logging.DEBUG, logger="accounting_bridge"):
        async with connect.public(token_store=store) as ledger:
            await ledger.companies()
            await ledger.adapter.logout(invalidate_now=False, expire_access_token_now=True)  # type: ignore[attr-defined]
            await ledger.adapter.user()  # type: ignore[attr-defined]  # 401 → refresh
            sandbox.faults.add("POST", "/suggestedRegistrations", drop="after")
            reg = ab.Registration(
                date=_dt.date(2026, 1, 1),
                description="x",
                lines=[ab.PostingLine(account="1", amount="1"), ab.PostingLine(account="2", amount="-1")],
                reference="r",
            )
            for call in (
                ledger.registrations.submit(reg),
                ledger.documents.delete("424242"),
                ledger.raw("GET", "/companies", params={"password": sandbox.password}),
            ):
                try:
                    await call
                except ab.AccountingError as exc:
                    errors += [str(exc), repr(exc)]
            reprs = [repr(ledger), repr(ledger.adapter), repr(ledger.adapter.settings), repr(ledger.adapter.transport)]  # type: ignore[attr-defined]
            reprs += [repr(t) for t in store.tokens.values()]
        async with connect.public(password="wrong-password-77") as bad:
            try:
                await bad.companies()
            except ab.AuthenticationError as exc:
                errors += [str(exc), repr(exc)]
    assert sandbox.refreshes == 1 and len(errors) >= 4
    secrets = [*all_secrets(sandbox), "wrong-password-77"]
    text = caplog.text + "\n".join(errors) + "\n".join(reprs)
    assert "attempt" in caplog.text  # debug logging was on
    for secret in secrets:
        assert secret not in text


async def test_s2s_api_key_stays_out(
    connect: Any, sandbox: MultiRegnskabSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="accounting_bridge"):
        async with connect.s2s() as ledger:
            [c async for c in ledger.customers.list()]
            sandbox.faults.add("GET", "/customers", api="s2s", status=500, times=10)
            try:
                [c async for c in ledger.customers.list()]
            except ab.ServerError as exc:
                errors += [str(exc), repr(exc)]
            sandbox.faults.clear()
            reprs = [repr(ledger.adapter), repr(ledger.adapter.settings), repr(ledger.adapter.transport)]  # type: ignore[attr-defined]
        async with connect.s2s(api_key="another-secret-key-55") as bad:
            try:
                [c async for c in bad.customers.list()]
            except ab.AuthenticationError as exc:
                errors += [str(exc), repr(exc)]
    assert len(errors) == 4
    text = caplog.text + "\n".join(errors) + "\n".join(reprs)
    for secret in (sandbox.api_key, "another-secret-key-55"):
        assert secret not in text
