"""Tokens bound to the password they were obtained with (#8.4), and token lifetimes under clock skew (#8.8).

Multi-Regnskab's refresh request presents no password (only the old token and the refresh token), so a token of
another binding is never refreshed: the ledger logs in afresh, and a wrong password is an `AuthenticationError`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab import MultiRegnskabAdapter, wire
from accounting_bridge.adapters.multiregnskab.public_client import token_binding
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox
from aiohttp import web

import accounting_bridge as ab

CET = zoneinfo.ZoneInfo("Europe/Copenhagen")
WRONG_PASSWORD = "gaettet-forkert-kodeord-7"


def connect(sandbox: MultiRegnskabSandbox, **settings: Any) -> ab.Ledger:
    settings.setdefault("password", sandbox.password)
    return ab.connect("multiregnskab", base_url=sandbox.public_url, username=sandbox.username, **settings)


async def user_name(ledger: ab.Ledger) -> str:
    adapter = ledger.adapter
    assert isinstance(adapter, MultiRegnskabAdapter)
    return str((await adapter.user())["userName"])


def in_another_process(work: Callable[[], Coroutine[Any, Any, None]]) -> Awaitable[None]:
    """Run `work` in its own event loop and thread: nothing cached in this process's loop is visible to it."""
    return asyncio.to_thread(asyncio.run, work())


async def test_in_process_a_wrong_password_never_gets_the_cached_token(sandbox: MultiRegnskabSandbox) -> None:
    async with connect(sandbox) as first:
        assert await user_name(first) == sandbox.username
        async with connect(sandbox, password=WRONG_PASSWORD) as second:
            with pytest.raises(ab.AuthenticationError) as info:
                await user_name(second)
        assert WRONG_PASSWORD not in str(info.value) and sandbox.password not in str(info.value)
        assert await user_name(first) == sandbox.username  # the first ledger keeps working
    assert sandbox.logins == 1 and sandbox.refreshes == 0


@pytest.mark.parametrize("same_process", [True, False])
async def test_through_a_shared_store_a_wrong_password_gets_authentication_error(
    sandbox: MultiRegnskabSandbox, same_process: bool
) -> None:
    store = ab.MemoryTokenStore()
    async with connect(sandbox, token_store=store) as first:
        assert await user_name(first) == sandbox.username
        ((key, saved),) = store.tokens.items()

        async def wrong_password() -> None:
            async with connect(sandbox, password=WRONG_PASSWORD, token_store=store) as second:
                with pytest.raises(ab.AuthenticationError):
                    await user_name(second)

        await (wrong_password() if same_process else in_another_process(wrong_password))
        assert store.tokens == {key: saved} and store.saves == 1  # not overwritten by the failed login
        assert await user_name(first) == sandbox.username
    # the stored refresh token was not used either: a refresh would not have checked the password
    assert sandbox.refreshes == 0 and sandbox.logins == 1
    assert sandbox.password not in key and WRONG_PASSWORD not in key
    assert saved.binding == token_binding(sandbox.username, sandbox.password, sandbox.public_url)
    assert sandbox.password not in (saved.binding or "")


async def test_a_ledger_without_password_does_not_use_a_token_obtained_with_one(
    sandbox: MultiRegnskabSandbox,
) -> None:
    store = ab.MemoryTokenStore()
    async with connect(sandbox, token_store=store) as first:
        await user_name(first)

    async def without_password() -> None:
        async with connect(sandbox, password=None, token_store=store) as second:
            with pytest.raises(ab.AuthenticationError):
                await user_name(second)

    await in_another_process(without_password)
    assert sandbox.refreshes == 0


async def test_a_token_saved_before_bindings_existed_means_a_new_login(sandbox: MultiRegnskabSandbox) -> None:
    legacy = wire.decode_token(sandbox._issue(sandbox.username))  # unbound, as stores hold them from before
    host = sandbox.public_url.split("//")[1].split("/")[0]
    key = f"multiregnskab:{sandbox.username}@{host}"  # the store key is unchanged
    store = ab.MemoryTokenStore({key: legacy})
    async with connect(sandbox, token_store=store) as ledger:
        assert await user_name(ledger) == sandbox.username
    assert sandbox.logins == 1 and sandbox.refreshes == 0
    assert store.tokens[key].access_token != legacy.access_token
    assert store.tokens[key].binding == token_binding(sandbox.username, sandbox.password, sandbox.public_url)


# --- #8.8: a server clock or zone that is off --------------------------------------------------------------------


@pytest.fixture
async def lagging() -> AsyncIterator[MultiRegnskabSandbox]:
    """Writes `tokenExpires` three hours behind (a wrong zone or clock); its `Date` header is the real time."""

    def three_hours_behind() -> dt.datetime:
        return dt.datetime.now(CET).replace(tzinfo=None) - dt.timedelta(hours=3)

    async with MultiRegnskabSandbox(clock=three_hours_behind) as sb:
        yield sb


async def test_tokens_that_look_expired_on_arrival_cause_one_login_not_one_per_call(
    lagging: MultiRegnskabSandbox,
) -> None:
    async with connect(lagging) as ledger:
        for _ in range(10):
            assert await user_name(ledger) == lagging.username
    assert lagging.logins == 1 and lagging.refreshes == 0


def skewed_token_server(server_now: dt.datetime, lifetime: dt.timedelta) -> tuple[web.Application, list[int]]:
    """A server whose clock is `server_now` (local Copenhagen time) both in `tokenExpires` and in its `Date`."""
    logins: list[int] = []

    async def login(request: web.Request) -> web.Response:
        logins.append(1)
        body = {
            "token": f"skewed-access-{len(logins)}",
            "tokenExpires": wire.format_local_timestamp(server_now + lifetime),
            "refreshToken": f"skewed-refresh-{len(logins)}",
        }
        date = email.utils.format_datetime(server_now.replace(tzinfo=CET).astimezone(dt.timezone.utc), usegmt=True)
        return web.json_response(body, headers={"Date": date})

    async def user(request: web.Request) -> web.Response:
        return web.json_response({"userName": "skew@example.test", "realName": "Skew"})

    app = web.Application()
    app.router.add_post("/login", login)
    app.router.add_get("/user", user)
    return app, logins


@pytest.mark.parametrize("server_offset_hours", [-5, 0, 7])
async def test_the_lifetime_is_measured_on_the_servers_clock(
    local_server: Callable[[web.Application], Awaitable[str]], server_offset_hours: int
) -> None:
    ours = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
    server_now = (ours + dt.timedelta(hours=server_offset_hours)).astimezone(CET).replace(tzinfo=None)
    app, logins = skewed_token_server(server_now, dt.timedelta(minutes=30))
    base = await local_server(app)
    ledger = ab.connect("multiregnskab", base_url=base, username="skew@example.test", password="pw-1234",
                        clock=lambda: ours)  # fmt: skip
    async with ledger:
        for _ in range(5):
            await user_name(ledger)
        token = await ledger.adapter.auth.token(ledger.adapter.transport)  # type: ignore[attr-defined]
    assert logins == [1]
    assert token.expires_at == ours + dt.timedelta(minutes=30)  # renewed a little before it really expires


def test_decode_token_applies_the_server_relative_lifetime_to_our_clock() -> None:
    data = {"token": "t-1", "tokenExpires": "2026-01-15T07:30:00.000", "refreshToken": "r-1"}
    ours = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
    # the server's clock says 07:00 Copenhagen time (06:00 GMT): five hours behind ours
    token = wire.decode_token(data, server_date="Thu, 15 Jan 2026 06:00:00 GMT", now=ours)
    assert token.expires_at == ours + dt.timedelta(minutes=30)
    # without a usable Date header the expiry is read as written, in the token zone
    for date in (None, "not a date", "Thu, 15 Jan 2026 09:00:00 GMT"):  # the last: no positive lifetime
        token = wire.decode_token(data, server_date=date, now=ours)
        assert token.expires_at == dt.datetime(2026, 1, 15, 7, 30, tzinfo=CET)
