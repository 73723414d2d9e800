"""Several processes share one TokenStore: a token another process rotated into the store is used, not lost.

"Another process" is simulated by spending a refresh token directly at the sandbox's token endpoint and (or not)
saving the rotated token to the shared store, while the ledger under test still holds the older token.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from accounting_bridge.adapters.smallinvoice import token_binding
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab

from .conftest import CLIENT_ID, CLIENT_SECRET

KEY = "tenant-1"


async def rotate(sandbox: SmallInvoiceSandbox, refresh_token: str, *, expired: bool = False) -> ab.Token:
    """The refresh-token grant as another process performs it; the rotated token as that process stores it."""
    body = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
    }
    url = sandbox.base_url + "/auth/access-tokens"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 200
        data = await response.json()
    now = dt.datetime.now(dt.timezone.utc)
    expires_at = now - dt.timedelta(seconds=1) if expired else now + dt.timedelta(seconds=data["expires_in"])
    return ab.Token(
        access_token=data["access_token"],
        refresh_token=data["refresh_token"],
        expires_at=expires_at,
        binding=token_binding(CLIENT_ID, CLIENT_SECRET, sandbox.base_url),  # as that process's ledger binds it
    )


async def start(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], store: ab.MemoryTokenStore, with_setting: bool
) -> ab.Ledger:
    """A ledger that has loaded (or obtained) a token, like a worker process that keeps running."""
    initial = sandbox.issue_refresh_token(CLIENT_ID)
    if with_setting:
        ledger = connect(refresh_token=initial, token_store=store, token_key=KEY)
    else:  # a worker started later: it only knows the store
        await store.save(KEY, await rotate(sandbox, initial))
        ledger = connect(token_store=store, token_key=KEY, grant="refresh_token")
    await ledger.adapter.owner()  # type: ignore[attr-defined]
    return ledger


@pytest.mark.parametrize("with_setting", [True, False])
async def test_a_newer_valid_token_in_the_store_is_used_after_invalid_grant(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], with_setting: bool
) -> None:
    store = ab.MemoryTokenStore()
    async with await start(sandbox, connect, store, with_setting) as ledger:
        held = store.tokens[KEY]
        sandbox.advance(sandbox.token_lifetime + 1)  # every access token so far has expired
        assert held.refresh_token is not None
        newer = await rotate(sandbox, held.refresh_token)  # another process refreshes and saves
        await store.save(KEY, newer)
        assert (await ledger.adapter.owner())["id"] == 1  # type: ignore[attr-defined]
        assert sandbox.invalid_grants <= 1  # at most the held (spent) refresh token was tried
        assert store.tokens[KEY].refresh_token == sandbox.current_refresh_token(CLIENT_ID)


@pytest.mark.parametrize("with_setting", [True, False])
async def test_a_newer_expired_token_in_the_store_is_refreshed_after_invalid_grant(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], with_setting: bool
) -> None:
    store = ab.MemoryTokenStore()
    async with await start(sandbox, connect, store, with_setting) as ledger:
        held = store.tokens[KEY]
        assert held.refresh_token is not None
        newer = await rotate(sandbox, held.refresh_token, expired=True)
        await store.save(KEY, newer)
        sandbox.advance(sandbox.token_lifetime + 1)
        assert (await ledger.adapter.owner())["id"] == 1  # type: ignore[attr-defined]
        assert sandbox.invalid_grants <= 1
        assert sandbox.grant_types[-1] == "refresh_token"
        newest = sandbox.current_refresh_token(CLIENT_ID)
        assert newest not in (None, newer.refresh_token)  # the stored token's refresh token was used and rotated
        assert store.tokens[KEY].refresh_token == newest


class RacingStore(ab.MemoryTokenStore):
    """A shared store; `race` runs once right after a load, as another process renewing in that instant."""

    def __init__(self) -> None:
        super().__init__()
        self.race: Callable[[], Awaitable[None]] | None = None

    async def load(self, key: str) -> ab.Token | None:
        token = await super().load(key)
        race, self.race = self.race, None
        if race is not None:
            await race()
        return token


@pytest.mark.parametrize("with_setting", [True, False])
async def test_a_rotation_racing_our_refresh_is_picked_up_from_the_store(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], with_setting: bool
) -> None:
    store = RacingStore()
    async with await start(sandbox, connect, store, with_setting) as ledger:
        held = store.tokens[KEY]
        assert held.refresh_token is not None
        spent = held.refresh_token

        async def other_process_renews() -> None:
            await store.save(KEY, await rotate(sandbox, spent))

        sandbox.advance(sandbox.token_lifetime + 1)
        store.race = other_process_renews  # between our reading the store and our refresh
        assert (await ledger.adapter.owner())["id"] == 1  # type: ignore[attr-defined]
        assert store.race is None  # the race did happen
        assert sandbox.invalid_grants == 1  # our refresh lost it
        assert sandbox.grant_types.count("refresh_token") == 2  # the start and the other process: nothing after
        assert store.tokens[KEY].refresh_token == sandbox.current_refresh_token(CLIENT_ID)


@pytest.mark.parametrize("with_setting", [True, False])
async def test_a_lost_rotation_says_authorize_again_not_pass_a_refresh_token(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], with_setting: bool
) -> None:
    store = ab.MemoryTokenStore()
    async with await start(sandbox, connect, store, with_setting) as ledger:
        held = store.tokens[KEY]
        assert held.refresh_token is not None
        sandbox.advance(sandbox.token_lifetime + 1)
        await rotate(sandbox, held.refresh_token)  # another process spends it and never saves the new one
        with pytest.raises(ab.AuthenticationError) as info:
            await ledger.adapter.owner()  # type: ignore[attr-defined]
    text = str(info.value)
    assert "authorize again" in text and "pass refresh_token=" not in text
    assert held.refresh_token not in text and CLIENT_SECRET not in text
