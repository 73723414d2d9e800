"""Error mapping ({code, message, meta}), request ids, write safety and redaction against the sandbox."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import attrs
import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import Fault, SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.transport import Request

from .conftest import CLIENT_SECRET

UUID = re.compile(r"request_id=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ADDRESS = ab.Address(street="Weg 1", postcode="3000", city="Bern", country="CH")


@pytest.fixture
async def fast(connect: Callable[..., ab.Ledger]) -> AsyncIterator[tuple[ab.Ledger, list[float]]]:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async with connect() as ledger:
        ledger.adapter.transport.sleep = fake_sleep  # type: ignore[attr-defined]
        await ledger.customers.upsert(ab.Customer(number="K-1", name="Muster AG", address=ADDRESS))
        yield ledger, delays


def new_invoice(number: str) -> ab.Invoice:
    return ab.Invoice(
        number=number,
        customer_number="K-1",
        issue_date=dt.date(2024, 5, 1),
        lines=[ab.InvoiceLine(description="Arbeit", unit_price=Decimal("100.00"), tax_rate=Decimal("8.1"))],
    )


async def test_422_becomes_unprocessable_with_the_field_list(
    sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]]
) -> None:
    ledger, _ = fast
    bad = attrs.evolve(new_invoice("R-1"), lines=[ab.InvoiceLine(description="x", unit_price=Decimal(1), unit="999")])
    with pytest.raises(ab.Unprocessable) as info:
        await ledger.invoices.create(bad)
    assert info.value.status == 422
    assert [f.path for f in info.value.fields] == ["positions[0].unit_id"]
    assert "positions[0].unit_id" in str(info.value) and info.value.request_id in str(info.value)


async def test_422_from_the_backend(sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]]) -> None:
    ledger, _ = fast
    response = await ledger.raw("POST", "/contacts", json={"type": "X", "email": "nope"})
    assert response.status == 422
    with pytest.raises(ab.Unprocessable) as info:
        await ledger.adapter.transport.send(  # type: ignore[attr-defined]
            Request("POST", "contacts", json={"type": "X", "email": "nope"})
        )
    error = info.value
    assert error.status == 422
    keys = {f.path for f in error.fields}
    assert keys >= {"relation", "name", "main_address", "type", "email"}
    assert "email" in str(error) and "Validation failed" in str(error)
    assert error.request_id and error.request_id in str(error)
    assert error.detail["meta"]["errors"][0]["key"] == "relation"


async def test_402_and_403_keep_their_meta(sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]]) -> None:
    ledger, _ = fast
    sandbox.contact_limit = 1
    with pytest.raises(ab.PermissionDenied) as info:
        await ledger.customers.upsert(ab.Customer(number="K-2", name="Zwei", address=ADDRESS))
    assert info.value.status == 402
    assert info.value.detail["meta"] == {"feature": "contacts", "limit": 1}
    assert info.value.detail["code"] == 4001
    assert "limit 1" in str(info.value) and info.value.request_id

    await ledger.invoices.create(new_invoice("R-1"))
    sandbox.locked_features.add("pdf")
    with pytest.raises(ab.PermissionDenied) as info:
        await ledger.invoices.pdf("R-1")
    assert info.value.status == 403
    assert info.value.detail["meta"] == {"feature": "pdf", "plans": ["premium"]}
    assert "premium" in str(info.value) and info.value.request_id in str(info.value)


async def test_5xx_on_reads_is_retried_and_every_line_has_a_request_id(
    sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]], caplog: pytest.LogCaptureFixture
) -> None:
    ledger, delays = fast
    caplog.set_level(logging.DEBUG, logger="accounting_bridge")
    sandbox.fail_next(503, count=2)
    assert (await ledger.customers.get("K-1")).name == "Muster AG"
    assert len(delays) == 2
    lines = [r.getMessage() for r in caplog.records if " attempt " in r.getMessage()]
    assert len(lines) == 3
    assert all(UUID.search(line) for line in lines)
    sandbox.fail_next(500, count=10)
    with pytest.raises(ab.ServerError) as info:
        await ledger.customers.get("K-1")
    assert info.value.request_id and f"request_id={info.value.request_id}" in str(info.value)


async def test_not_found_and_malformed_json_carry_the_request_id(
    sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]]
) -> None:
    ledger, _ = fast
    response = await ledger.raw("GET", "/receivables/invoices/999")
    assert response.status == 404 and response.request_id
    sandbox.scripted_faults.append(Fault(status=200, body="not an envelope"))
    with pytest.raises(ab.ResponseError) as info:
        await ledger.customers.get("K-1")
    assert "items" in str(info.value)
    assert info.value.status == 200 and info.value.request_id and info.value.request_id in str(info.value)


async def test_dropped_invoice_post_is_resolved_by_lookup(
    sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]]
) -> None:
    ledger, _ = fast

    def posts() -> int:
        return sum(1 for m, p, _s, _r in sandbox.request_log if m == "POST" and p == "/v2/receivables/invoices")

    # dropped before it was performed: the lookup finds nothing, the POST is sent again, one invoice
    sandbox.drop_next(path="/v2/receivables/invoices", method="POST")
    created = await ledger.invoices.create(new_invoice("R-1"))
    assert created.number == "R-1" and created.id
    assert posts() == 2
    # dropped after it was performed: the lookup finds it, no second POST, no duplicate
    sandbox.drop_next(path="/v2/receivables/invoices", method="POST", after_commit=True)
    second = await ledger.invoices.create(new_invoice("R-2"))
    assert second.number == "R-2" and second.id
    assert posts() == 3
    assert sorted(i["number"] for i in sandbox.invoices.values()) == ["R-1", "R-2"]


async def test_payment_post_dropped_after_commit_is_write_outcome_unknown(
    sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]]
) -> None:
    ledger, _ = fast
    await ledger.invoices.create(new_invoice("R-1"))
    invoice_id = next(iter(sandbox.invoices))
    sandbox.drop_next(path=f"/receivables/invoices/{invoice_id}/payments", after_commit=True)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await ledger.payments.create(ab.Payment(invoice_number="R-1", date=dt.date(2024, 6, 1), amount=Decimal(5)))
    assert info.value.reference == "R-1"
    assert len(sandbox.payments[invoice_id]) == 1  # it did land; the SDK did not send it twice


async def test_secrets_never_in_logs_or_exception_texts(
    sandbox: SmallInvoiceSandbox, fast: tuple[ab.Ledger, list[float]], caplog: pytest.LogCaptureFixture
) -> None:
    ledger, _ = fast
    caplog.set_level(logging.DEBUG, logger="accounting_bridge")
    access_token = next(iter(sandbox.access_tokens))
    # a hostile backend echoing the credentials back in an error message
    sandbox.fail_next(400, body={"code": 2000, "message": f"bad token {access_token} for {CLIENT_SECRET}"})
    with pytest.raises(ab.Unprocessable) as info:
        await ledger.customers.get("K-1")
    texts = [str(info.value), repr(info.value), *(r.getMessage() for r in caplog.records)]
    assert "***" in str(info.value)
    for text in texts:
        assert access_token not in text and CLIENT_SECRET not in text
