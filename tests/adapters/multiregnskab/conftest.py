"""Fixtures: the Multi-Regnskab sandbox on 127.0.0.1 and ledgers of both adapters connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab
from accounting_bridge.examples import payroll as payroll_example
from accounting_bridge.testing import FakeSleep


@pytest.fixture
async def sandbox() -> AsyncIterator[MultiRegnskabSandbox]:
    async with MultiRegnskabSandbox() as sb:
        yield sb


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


def connect_public(sandbox: MultiRegnskabSandbox, sleep: FakeSleep | None = None, **settings: Any) -> ab.Ledger:
    settings.setdefault("password", sandbox.password)
    ledger = ab.connect("multiregnskab", base_url=sandbox.public_url, username=sandbox.username, **settings)
    ledger.adapter.transport.sleep = sleep or FakeSleep()  # type: ignore[attr-defined]
    return ledger


def connect_s2s(sandbox: MultiRegnskabSandbox, sleep: FakeSleep | None = None, **settings: Any) -> ab.Ledger:
    settings.setdefault("api_key", sandbox.api_key)
    settings.setdefault("company", 1002)
    ledger = ab.connect("multiregnskab-s2s", base_url=sandbox.s2s_url, **settings)
    ledger.adapter.transport.sleep = sleep or FakeSleep()  # type: ignore[attr-defined]
    return ledger


@pytest.fixture
async def ledger(sandbox: MultiRegnskabSandbox, sleep: FakeSleep) -> AsyncIterator[ab.Ledger]:
    async with connect_public(sandbox, sleep) as led:
        yield led


@pytest.fixture
async def s2s(sandbox: MultiRegnskabSandbox, sleep: FakeSleep) -> AsyncIterator[ab.Ledger]:
    async with connect_s2s(sandbox, sleep) as led:
        yield led


class Connector:
    def __init__(self, sandbox: MultiRegnskabSandbox, sleep: FakeSleep) -> None:
        self.sandbox = sandbox
        self.sleep = sleep

    def public(self, **settings: Any) -> ab.Ledger:
        return connect_public(self.sandbox, self.sleep, **settings)

    def s2s(self, **settings: Any) -> ab.Ledger:
        return connect_s2s(self.sandbox, self.sleep, **settings)


@pytest.fixture
def connect(sandbox: MultiRegnskabSandbox, sleep: FakeSleep) -> Connector:
    return Connector(sandbox, sleep)


@pytest.fixture
def payroll() -> ModuleType:
    return payroll_example
