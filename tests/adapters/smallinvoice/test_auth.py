"""OAuth2: client credentials and rotating single-use refresh tokens, single-flight renewal, redaction."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Callable

import aiohttp
import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab

from .conftest import CLIENT_ID, CLIENT_SECRET


def all_secrets(sandbox: SmallInvoiceSandbox) -> list[str]:
    return [CLIENT_SECRET, *sandbox.access_tokens, *sandbox.issued_refresh_tokens]


def assert_clean(texts: list[str], sandbox: SmallInvoiceSandbox) -> None:
    secrets = all_secrets(sandbox)
    assert len(secrets) > 1
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a secret leaked"


async def test_client_credentials_json_body_and_scopes(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async with connect(scopes="contact invoice configuration") as ledger:
        assert [c async for c in ledger.customers.list()] == []
        assert sandbox.grant_types == ["client_credentials"]
        token_call = sandbox.request_log[0]
        assert token_call[:3] == ("POST", "/v2/auth/access-tokens", 200)
    async with connect(scopes=["invoice"]) as ledger:  # a token without the contact scope
        with pytest.raises(ab.PermissionDenied) as info:
            await ledger.customers.get("K-1")
        assert info.value.detail["meta"]["error_type"] == "required_scopes_missing"


async def test_sandbox_token_endpoint_accepts_form_and_basic(sandbox: SmallInvoiceSandbox) -> None:
    url = sandbox.base_url + "/auth/access-tokens"
    async with aiohttp.ClientSession() as session:
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        async with session.post(url, data=form) as response:
            assert response.status == 200
            body = await response.json()
            assert body["expires_in"] == 43200 and "refresh_token" not in body
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        headers = {"Authorization": basic}
        async with session.post(url, data={"grant_type": "client_credentials"}, headers=headers) as response:
            assert response.status == 200
        async with session.post(url, json={**form, "client_secret": "wrong"}) as response:
            assert response.status == 401
            assert (await response.json())["error"] == "invalid_client"


async def test_wrong_client_secret_is_authentication_error_without_secret(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async with connect(client_secret="cs_wrong_secret_value_999") as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            await ledger.customers.get("K-1")
    assert "cs_wrong_secret_value_999" not in str(info.value) and "cs_wrong_secret_value_999" not in repr(info.value)
    assert info.value.request_id


async def test_fifty_concurrent_requests_token_expires_mid_run(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="accounting_bridge")
    sandbox.latency = 0.02
    store = ab.MemoryTokenStore()
    initial = sandbox.issue_refresh_token(CLIENT_ID)
    async with connect(refresh_token=initial, token_store=store) as ledger:
        await ledger.customers.upsert(
            ab.Customer(
                number="K-1", name="Muster", address=ab.Address(street="A", postcode="1", city="B", country="CH")
            )
        )
        assert sandbox.grant_types == ["refresh_token"]
        assert sandbox.refresh_tokens.get(initial) is None  # rotated
        sandbox.expire_tokens_at_request = 20  # the 20th request of the run expires every access token
        results = await asyncio.gather(*(ledger.customers.get("K-1") for _ in range(50)), return_exceptions=True)
        assert all(isinstance(r, ab.Customer) for r in results), [r for r in results if not isinstance(r, ab.Customer)]
        assert sandbox.unauthorized > 0  # the token really expired mid-run
        assert sandbox.max_in_flight >= 10  # and the requests really overlapped
        assert sandbox.grant_types == ["refresh_token", "refresh_token"]  # exactly one refresh in the run
        assert sandbox.invalid_grants == 0
        newest = sandbox.current_refresh_token(CLIENT_ID)
        assert newest is not None
        stored = store.tokens[ledger.adapter.settings.effective_token_key]  # type: ignore[attr-defined]
        assert stored.refresh_token == newest
        assert stored.access_token in sandbox.access_tokens
    assert_clean([r.getMessage() for r in caplog.records], sandbox)
    assert any("request_id=" in r.getMessage() and "401" in r.getMessage() for r in caplog.records)


async def test_token_store_wins_and_survives_a_new_ledger(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    store = ab.MemoryTokenStore()
    initial = sandbox.issue_refresh_token(CLIENT_ID)
    async with connect(refresh_token=initial, token_store=store, token_key="tenant-1") as ledger:
        await ledger.adapter.owner()  # type: ignore[attr-defined]
    rotated = store.tokens["tenant-1"]
    assert rotated.refresh_token == sandbox.current_refresh_token(CLIENT_ID)
    # a later process: the token store (not the spent setting) is used; expire the access token to force a refresh
    store.tokens["tenant-1"] = ab.Token(access_token="expired", refresh_token=rotated.refresh_token)
    sandbox.advance(50_000)
    async with connect(token_store=store, token_key="tenant-1", grant="refresh_token") as ledger:
        await ledger.adapter.owner()  # type: ignore[attr-defined]
    assert sandbox.invalid_grants == 0
    assert store.tokens["tenant-1"].refresh_token == sandbox.current_refresh_token(CLIENT_ID)


async def test_invalid_grant_says_the_refresh_token_was_already_used(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="accounting_bridge")
    token = sandbox.issue_refresh_token(CLIENT_ID)
    async with aiohttp.ClientSession() as session:  # another process spends the token first
        body = {
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": token,
        }
        async with session.post(sandbox.base_url + "/auth/access-tokens", json=body) as response:
            assert response.status == 200
    async with connect(refresh_token=token) as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            await ledger.customers.get("K-1")
    text = str(info.value)
    assert "already used" in text and "invalid_grant" in text
    assert info.value.request_id and info.value.request_id in text
    assert sandbox.invalid_grants == 1
    assert token not in text and CLIENT_SECRET not in text
    assert_clean([r.getMessage() for r in caplog.records], sandbox)


async def test_settings_hide_secrets_and_refuse_bad_values(connect: Callable[..., ab.Ledger]) -> None:
    ledger = connect(refresh_token="rt_setting_secret_value")
    try:
        shown = repr(ledger.adapter.settings) + repr(ledger.adapter) + repr(ledger.adapter.transport)  # type: ignore[attr-defined]
        assert CLIENT_SECRET not in shown and "rt_setting_secret_value" not in shown
    finally:
        await ledger.aclose()
    with pytest.raises(ab.ConfigurationError, match="language"):
        connect(language="xx")
    with pytest.raises(ab.ConfigurationError, match="page_size"):
        connect(page_size=500)
    with pytest.raises(ab.ConfigurationError, match="client_secret"):
        ab.connect("smallinvoice", client_id="x")


async def test_token_is_renewed_a_little_before_expiry_without_a_401(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async with connect() as ledger:
        await ledger.adapter.owner()  # type: ignore[attr-defined]
        auth = ledger.adapter.auth  # type: ignore[attr-defined]
        real_clock = auth.clock
        auth.clock = lambda: real_clock() + dt.timedelta(hours=12) - dt.timedelta(minutes=2)
        ledger.adapter.oauth.clock = auth.clock  # type: ignore[attr-defined]  # new tokens expire by the same clock
        await asyncio.gather(*(ledger.adapter.owner() for _ in range(5)))  # type: ignore[attr-defined]
    assert sandbox.grant_types == ["client_credentials", "client_credentials"]  # one renewal for all five
    assert sandbox.unauthorized == 0
