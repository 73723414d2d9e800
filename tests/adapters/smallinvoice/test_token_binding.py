"""A token is only used by a ledger holding the client secret it was obtained with (issue #8.4).

A second ledger with the right client id and a wrong secret gets `AuthenticationError` — in the same process (the
token cached in memory) and through a shared `TokenStore` (another process) — and the first ledger keeps working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from accounting_bridge.adapters.smallinvoice import token_binding
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.transport import auth as auth_module

from .conftest import CLIENT_ID, CLIENT_SECRET

WRONG_SECRET = "cs_guessed_wrong_value_000"
KEY = "tenant-1"


async def owner_id(ledger: ab.Ledger) -> int:
    return int((await ledger.adapter.owner())["id"])  # type: ignore[attr-defined]


async def in_another_process(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `work` in its own event loop and thread, with tokens of its own: nothing this process holds in memory
    (tokens are shared by every loop of a process) is visible to it."""
    ours = auth_module._TOKENS
    auth_module._TOKENS = {}
    try:
        await asyncio.to_thread(asyncio.run, work())
    finally:
        auth_module._TOKENS = ours


async def test_in_process_a_wrong_secret_never_gets_the_cached_token(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async with connect() as first:
        assert await owner_id(first) == 1
        async with connect(client_secret=WRONG_SECRET) as second:
            with pytest.raises(ab.AuthenticationError, match="client id and secret") as info:
                await owner_id(second)
        assert WRONG_SECRET not in str(info.value) and CLIENT_SECRET not in str(info.value)
        assert await owner_id(first) == 1  # the first ledger keeps working
    assert sandbox.grant_types == ["client_credentials"]  # the wrong secret obtained nothing


@pytest.mark.parametrize("same_process", [True, False])
async def test_through_a_shared_store_a_wrong_secret_gets_authentication_error(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], same_process: bool
) -> None:
    store = ab.MemoryTokenStore()
    async with connect(token_store=store) as first:
        assert await owner_id(first) == 1
        ((key, saved),) = store.tokens.items()

        async def wrong_secret() -> None:
            async with connect(client_secret=WRONG_SECRET, token_store=store) as second:
                with pytest.raises(ab.AuthenticationError, match="client id and secret"):
                    await owner_id(second)

        await (wrong_secret() if same_process else in_another_process(wrong_secret))
        assert store.tokens == {key: saved} and store.saves == 1  # not overwritten by the failed attempt
        assert await owner_id(first) == 1
    assert CLIENT_SECRET not in key and WRONG_SECRET not in key  # the store never sees a secret in a key
    assert saved.binding == token_binding(CLIENT_ID, CLIENT_SECRET, sandbox.base_url)
    assert CLIENT_SECRET not in (saved.binding or "")


@pytest.mark.parametrize("same_process", [True, False])
async def test_a_stored_refresh_token_is_refused_to_a_wrong_secret_and_stays_usable(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger], same_process: bool
) -> None:
    store = ab.MemoryTokenStore()
    initial = sandbox.issue_refresh_token(CLIENT_ID)
    async with connect(refresh_token=initial, token_store=store, token_key=KEY) as first:
        assert await owner_id(first) == 1
        saved = store.tokens[KEY]

        async def wrong_secret() -> None:
            async with connect(client_secret=WRONG_SECRET, token_store=store, token_key=KEY,
                               grant="refresh_token") as second:  # fmt: skip
                with pytest.raises(ab.AuthenticationError, match="client id and secret"):
                    await owner_id(second)

        await (wrong_secret() if same_process else in_another_process(wrong_secret))
        assert store.tokens[KEY] is saved
        assert sandbox.current_refresh_token(CLIENT_ID) == saved.refresh_token  # not spent by the wrong secret
        sandbox.advance(sandbox.token_lifetime + 1)  # the first ledger must now refresh with it
        assert await owner_id(first) == 1
    assert sandbox.grant_types == ["refresh_token", "refresh_token"]
    assert store.tokens[KEY].refresh_token == sandbox.current_refresh_token(CLIENT_ID)


async def test_a_token_saved_before_bindings_existed_is_refreshed_not_used(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    store = ab.MemoryTokenStore()
    initial = sandbox.issue_refresh_token(CLIENT_ID)
    async with connect(refresh_token=initial, token_store=store, token_key=KEY) as first:
        await owner_id(first)
    old = store.tokens[KEY]
    store.tokens[KEY] = ab.Token(access_token=old.access_token, refresh_token=old.refresh_token)  # no binding

    async def later_process() -> None:
        async with connect(token_store=store, token_key=KEY, grant="refresh_token") as later:
            assert await owner_id(later) == 1

    await in_another_process(later_process)
    assert sandbox.grant_types == ["refresh_token", "refresh_token"]  # its refresh token, with our secret
    assert store.tokens[KEY].binding == token_binding(CLIENT_ID, CLIENT_SECRET, sandbox.base_url)
    assert store.tokens[KEY].access_token != old.access_token
