"""Fixtures: a smallinvoice sandbox on 127.0.0.1 (real sockets) and ledgers connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab

CLIENT_ID = "client-4711"
CLIENT_SECRET = "cs_super_secret_value_123"


@pytest.fixture
async def sandbox() -> AsyncIterator[SmallInvoiceSandbox]:
    sb = SmallInvoiceSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


@pytest.fixture
def connect(sandbox: SmallInvoiceSandbox) -> Callable[..., ab.Ledger]:
    def make(**settings: Any) -> ab.Ledger:
        values: dict[str, Any] = {
            "base_url": sandbox.base_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **settings,
        }
        return ab.connect("smallinvoice", **values)

    return make


@pytest.fixture
async def ledger(connect: Callable[..., ab.Ledger]) -> AsyncIterator[ab.Ledger]:
    async with connect() as led:
        yield led
