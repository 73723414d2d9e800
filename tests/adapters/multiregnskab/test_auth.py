"""Login, token expiry on a shared fake clock, rotating single-use refresh tokens, single flight, logout, store."""

from __future__ import annotations

import asyncio
import datetime as _dt
import zoneinfo
from collections.abc import AsyncIterator
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab import MultiRegnskabAdapter, wire
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab

CET = zoneinfo.ZoneInfo("Europe/Copenhagen")


class Clock:
    """One time for both sides: the adapter reads it as UTC, the sandbox as zone-less Copenhagen time."""

    def __init__(self) -> None:
        self.now = _dt.datetime(2026, 1, 15, 9, 0, tzinfo=_dt.timezone.utc)  # winter: CET = UTC+1

    def utc(self) -> _dt.datetime:
        return self.now

    def local(self) -> _dt.datetime:
        return self.now.astimezone(CET).replace(tzinfo=None)

    def advance(self, **delta: float) -> None:
        self.now += _dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def timed(clock: Clock) -> AsyncIterator[MultiRegnskabSandbox]:
    async with MultiRegnskabSandbox(clock=clock.local, token_lifetime=_dt.timedelta(minutes=30)) as sb:
        yield sb


def open_ledger(sb: MultiRegnskabSandbox, clock: Clock, **settings: Any) -> ab.Ledger:
    settings.setdefault("password", sb.password)
    return ab.connect("multiregnskab", base_url=sb.public_url, username=sb.username, clock=clock.utc, **settings)


def mr(ledger: ab.Ledger) -> MultiRegnskabAdapter:
    assert isinstance(ledger.adapter, MultiRegnskabAdapter)
    return ledger.adapter


async def test_one_login_for_concurrent_requests(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    async with open_ledger(timed, clock) as ledger:
        await asyncio.gather(*(mr(ledger).user() for _ in range(10)))
    assert timed.logins == 1 and timed.refreshes == 0
    login = timed.calls_to("POST", "/login")[0]
    assert login.body == {"userName": timed.username, "password": timed.password}


async def test_expired_token_is_refreshed_once_before_use(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    store = ab.MemoryTokenStore()
    async with open_ledger(timed, clock, token_store=store) as ledger:
        await mr(ledger).user()
        ((key, first),) = store.tokens.items()
        clock.advance(minutes=31)
        await asyncio.gather(*(mr(ledger).user() for _ in range(8)))
    assert timed.logins == 1 and timed.refreshes == 1
    refresh = timed.calls_to("POST", "/refreshToken")[0]
    assert refresh.headers["Authorization"] == f"Bearer {first.access_token}"  # the old token in the header
    assert refresh.body == {"refreshToken": first.refresh_token}  # the refresh token in the body
    second = store.tokens[key]
    assert second.refresh_token != first.refresh_token and second.access_token != first.access_token  # rotated
    assert store.saves == 2
    # the token's zone-less expiry was read as Copenhagen time: the refresh happened before use, no 401 round trip
    assert len(timed.calls_to("GET", "/user")) == 9


async def test_token_expiry_read_in_copenhagen_time(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    async with open_ledger(timed, clock) as ledger:
        await mr(ledger).user()
        token = await mr(ledger).auth.token(ledger.adapter.transport)  # type: ignore[attr-defined]
        assert token.expires_at == clock.now + _dt.timedelta(minutes=30)
        clock.advance(minutes=28)
        await mr(ledger).user()
        assert timed.refreshes == 0
        clock.advance(minutes=1, seconds=30)  # inside the 60 s refresh margin
        await mr(ledger).user()
        assert timed.refreshes == 1


async def test_server_side_expiry_gets_401_then_refresh(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    async with open_ledger(timed, clock) as ledger:
        affected = await mr(ledger).logout(invalidate_now=False, expire_access_token_now=True)
        assert affected == 1
        user = await mr(ledger).user()  # 401 → refresh → retried once
    assert user["userName"] == timed.username
    assert timed.refreshes == 1 and timed.logins == 1
    assert len(timed.calls_to("GET", "/user")) == 2


async def test_refresh_tokens_are_single_use(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    store = ab.MemoryTokenStore()
    async with open_ledger(timed, clock, token_store=store) as ledger:
        await mr(ledger).user()
        (first,) = store.tokens.values()
        clock.advance(minutes=45)
        await mr(ledger).user()
        replay = await ledger.raw(
            "POST",
            "/refreshToken",
            json={"refreshToken": first.refresh_token},
            headers={"Authorization": f"Bearer {first.access_token}"},
        )
    assert replay.status == 401


async def test_logout_then_login_again(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    async with open_ledger(timed, clock) as ledger:
        assert await mr(ledger).logout() == 1  # invalidates token and refresh token
        await mr(ledger).user()  # 401 → refresh refused → login with the password
    assert timed.logins == 2
    logout = timed.calls_to("DELETE", "/tokens")[0]
    assert logout.body == {
        "applyToAllTokensByUser": False,
        "invalidateNow": True,
        "expireAccessTokenNow": False,
        "expireRefreshTokenNow": False,
    }


async def test_token_from_store_without_password(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    token = wire.decode_token(timed._issue(timed.username))
    host = timed.public_url.split("//")[1].split("/")[0]
    store = ab.MemoryTokenStore({f"multiregnskab:{timed.username}@{host}": token})
    async with open_ledger(timed, clock, password=None, token_store=store) as ledger:
        assert (await mr(ledger).user())["userName"] == timed.username
        clock.advance(hours=1)
        await mr(ledger).user()
    assert timed.logins == 0 and timed.refreshes == 1 and store.saves == 1


async def test_no_password_and_no_token(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    async with open_ledger(timed, clock, password=None) as ledger:
        with pytest.raises(ab.AuthenticationError, match="refresh token"):
            await ledger.companies()


async def test_wrong_password(timed: MultiRegnskabSandbox, clock: Clock) -> None:
    async with open_ledger(timed, clock, password="forkert-kodeord-42") as ledger:
        with pytest.raises(ab.AuthenticationError) as info:
            await ledger.companies()
    assert info.value.status == 401 and "forkert-kodeord-42" not in str(info.value)
    assert "forkert-kodeord-42" not in repr(info.value)


async def test_user_endpoints(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    user = await mr(ledger).user()
    assert user == {"userName": sandbox.username, "realName": "Birgitte Bogholder"}
    code = await mr(ledger).access_request()
    assert len(code) == 6 and code == await mr(ledger).access_request()


def test_settings_validation() -> None:
    with pytest.raises(ab.ConfigurationError, match="username"):
        ab.connect("multiregnskab", password="x")
    with pytest.raises(ab.ConfigurationError, match="token_timezone"):
        ab.connect("multiregnskab", username="a@b.dk", token_timezone="Mars/Olympus")
    with pytest.raises(ab.ConfigurationError, match="archive_page_size"):
        ab.connect("multiregnskab", username="a@b.dk", archive_page_size=0)


async def test_sandbox_advance_expires_tokens(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    await mr(ledger).user()
    sandbox.advance(_dt.timedelta(minutes=31))  # only the server's clock moves: the adapter learns it from a 401
    await mr(ledger).user()
    assert sandbox.refreshes == 1 and sandbox.logins == 1
    assert [c.path for c in sandbox.calls if c.method != "GET" or c.path == "/user"][-3:] == [
        "/user",
        "/refreshToken",
        "/user",
    ]
