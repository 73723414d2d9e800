from __future__ import annotations

import datetime as _dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep

API_KEY = "rma-secret-key-4711"
TODAY = _dt.date(2024, 5, 15)


@pytest.fixture
async def sandbox() -> AsyncIterator[RmaSandbox]:
    async with RmaSandbox(mandant="demo", api_key=API_KEY, today=lambda: TODAY) as server:
        yield server


def _connect(sandbox: RmaSandbox, wire_format: str = "json", **settings: Any) -> ab.Ledger:
    values: dict[str, Any] = {"tenant": "demo", "api_key": API_KEY, "base_url": sandbox.base_url}
    values.update(settings)
    ledger = ab.connect("runmyaccounts", wire_format=wire_format, **values)
    ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
    return ledger


@pytest.fixture(params=["json", "xml"])
async def ledger(request: pytest.FixtureRequest, sandbox: RmaSandbox) -> AsyncIterator[ab.Ledger]:
    async with _connect(sandbox, request.param) as opened:
        yield opened


@pytest.fixture
def connect() -> Any:
    """Factory: connect(sandbox, wire_format="json", **settings) -> Ledger (caller closes it)."""
    return _connect
