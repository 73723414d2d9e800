"""Closing a ledger while its token request is in flight does not lose the refresh token the server rotated."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox
from aiohttp import web

import accounting_bridge as ab

from .conftest import CLIENT_ID, CLIENT_SECRET


class HeldTokenAnswers(SmallInvoiceSandbox):
    """Rotates the refresh token at once, but holds the answer back until released."""

    def __init__(self) -> None:
        super().__init__()
        self.rotated = asyncio.Event()
        self.release = asyncio.Event()

    async def _token(self, request: web.Request) -> web.StreamResponse:
        response = await super()._token(request)
        self.rotated.set()
        await self.release.wait()
        return response


@pytest.mark.parametrize("own_session", [False, True], ids=["ledger-session", "caller-session"])
async def test_closing_the_ledger_waits_for_the_renewal_in_flight(own_session: bool) -> None:
    sandbox = HeldTokenAnswers()
    sandbox.add_client(CLIENT_ID, CLIENT_SECRET)
    await sandbox.start()
    session = aiohttp.ClientSession() if own_session else None
    try:
        store = ab.MemoryTokenStore()
        ledger = ab.connect(
            "smallinvoice",
            session=session,
            base_url=sandbox.base_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=sandbox.issue_refresh_token(CLIENT_ID),
            token_store=store,
            token_key="close-test",
        )
        caller = asyncio.create_task(ledger.adapter.owner())  # type: ignore[attr-defined]
        await sandbox.rotated.wait()
        caller.cancel()  # the caller gives up (a timeout) and leaves `async with`
        closing = asyncio.create_task(ledger.aclose())
        await asyncio.sleep(0)  # one loop step: the close is under way before the answer comes
        sandbox.release.set()
        await closing
        if session is not None:
            await session.close()  # the caller closes its own session right after the ledger
        assert store.tokens["close-test"].refresh_token == sandbox.current_refresh_token(CLIENT_ID)
    finally:
        sandbox.release.set()
        if session is not None:
            await session.close()
        await sandbox.stop()
