"""Fast paths of issue 9 that must not change behaviour: a call's first attempt runs outside tenacity (the retries
after it still wait and stop as the policy says), models set their fields through their slots (same signature,
same conversion of `raw`, same validation)."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable
from decimal import Decimal
from types import MappingProxyType

import attrs
import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge import models
from accounting_bridge.testing import FakeSleep
from accounting_bridge.transport import Request, RetryPolicy, Transport, TransportConfig

Start = Callable[[web.Application], Awaitable[str]]
DAY = dt.date(2026, 11, 1)
LINE = ab.InvoiceLine(description="Beratung", unit_price="10.00")


def _answers(*statuses: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Answer each request with the next status; a 503 announces `Retry-After: <its position + 1>` seconds."""
    remaining = list(statuses)

    async def handler(request: web.Request) -> web.Response:
        status = remaining.pop(0)
        headers = {"Retry-After": str(len(statuses) - len(remaining) + 1)} if status == 503 else {}
        return web.Response(status=status, headers=headers, body=b"{}")

    return handler


async def _transport(local_server: Start, max_retries: int, *statuses: int) -> tuple[Transport, FakeSleep]:
    app = web.Application()
    app.router.add_get("/flaky", _answers(*statuses))
    base = await local_server(app)
    transport = Transport(TransportConfig(backend="test", base_url=base, retry=RetryPolicy(max_retries=max_retries)))
    fake = FakeSleep()
    transport.sleep, transport.clock = fake, fake.clock
    return transport, fake


async def test_retries_after_a_failed_first_attempt_wait_and_count_as_before(local_server: Start) -> None:
    transport, fake = await _transport(local_server, 3, 503, 503, 200)
    response = await transport.send(Request("GET", "/flaky"))
    assert response.status == 200
    assert fake.delays == [2.0, 3.0]  # each 503's own Retry-After, the first one included
    assert transport.attempts == 3
    await transport.aclose()


async def test_the_last_allowed_attempt_raises_its_own_error(local_server: Start) -> None:
    transport, fake = await _transport(local_server, 1, 503, 503, 200)
    with pytest.raises(ab.BackendError) as info:
        await transport.send(Request("GET", "/flaky"))
    assert getattr(info.value, "status", None) == 503
    assert transport.attempts == 2 and fake.delays == [2.0]
    await transport.aclose()


FAST_MODELS = [
    cls
    for cls in vars(models).values()
    if isinstance(cls, type) and attrs.has(cls) and "fast init" in cls.__init__.__code__.co_filename
]


def test_every_checked_model_has_the_fast_init() -> None:
    assert {cls.__name__ for cls in FAST_MODELS} >= {"Invoice", "InvoiceLine", "Customer", "Address", "Payment"}


@pytest.mark.parametrize("cls", FAST_MODELS, ids=lambda c: c.__name__)
def test_the_fast_init_takes_what_attrs_init_took(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = attrs.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    for parameter, field in zip(parameters, fields, strict=True):
        expected = inspect.Parameter.empty if field.default is attrs.NOTHING else field.default
        assert parameter.default is expected, field.name


def test_raw_stays_a_read_only_copy_and_evolve_still_validates() -> None:
    payload = {"id": 7}
    invoice = ab.Invoice(number="R-1", customer_number="K-1", issue_date=DAY, lines=[LINE], raw=payload)
    payload["id"] = 8
    assert isinstance(invoice.raw, MappingProxyType) and invoice.raw["id"] == 7
    assert invoice.lines == (LINE,) and LINE.unit_price == Decimal("10.00")
    with pytest.raises(ab.ValidationError) as info:
        attrs.evolve(invoice, number=" ")
    assert [e.path for e in info.value.errors] == ["number"]
