"""The ledger refuses unsupported operations and invalid input before any I/O."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

import pytest

import accounting_bridge as ab
from accounting_bridge.ledger import AdapterBase, Capability


class CountingAdapter(AdapterBase):
    """Supports only customers.get; counts every call that reaches it."""

    name: ClassVar[str] = "counting"
    settings_class: ClassVar[type[Any]] = object
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CUSTOMERS_GET, Capability.INVOICES_CREATE})

    def __init__(self) -> None:
        self.calls: list[str] = []

    def validate(self, item: object) -> None:
        self.calls.append("validate")
        if isinstance(item, ab.Invoice) and len(item.number) > 8:
            raise ab.ValidationError(ab.FieldError("number", "at most 8 characters"))

    async def get_customer(self, number: str) -> ab.Customer:
        self.calls.append("get_customer")
        return ab.Customer(number=number, name="x")

    async def create_invoice(self, invoice: ab.Invoice) -> ab.Invoice:
        self.calls.append("create_invoice")
        return invoice


def invoice(number: str = "R-1") -> ab.Invoice:
    return ab.Invoice(
        number=number,
        customer_number="K-1",
        issue_date=dt.date(2026, 1, 1),
        lines=[ab.InvoiceLine(description="x", unit_price=Decimal("1.00"))],
    )


async def test_unsupported_operations_raise_before_reaching_the_adapter() -> None:
    adapter = CountingAdapter()
    ledger = ab.Ledger(adapter)
    with pytest.raises(ab.UnsupportedOperation) as info:
        ledger.invoices.list()
    assert info.value.backend == "counting" and "invoices.list" in str(info.value)
    for call in (
        ledger.payments.create(ab.Payment(invoice_number="R", date=dt.date(2026, 1, 1), amount=Decimal(1))),
        ledger.documents.upload(ab.Document(filename="a.pdf", content=b"x")),
        ledger.raw("GET", "/x"),
        ledger.companies(),
    ):
        with pytest.raises(ab.UnsupportedOperation):
            await call
    assert adapter.calls == []
    assert ledger.supports(Capability.CUSTOMERS_GET) and not ledger.supports(Capability.RAW)


async def test_adapter_validation_runs_before_the_write() -> None:
    adapter = CountingAdapter()
    ledger = ab.Ledger(adapter)
    with pytest.raises(ab.ValidationError) as info:
        await ledger.invoices.create(invoice("R-123456789"))
    assert info.value.fields == ("number",) and info.value.backend == "counting"
    assert adapter.calls == ["validate"]
    await ledger.invoices.create(invoice())
    assert adapter.calls == ["validate", "validate", "create_invoice"]


async def test_wrong_argument_types_are_validation_errors() -> None:
    ledger = ab.Ledger(CountingAdapter())
    with pytest.raises(ab.ValidationError) as info:
        await ledger.invoices.create({"number": "R-1"})  # type: ignore[arg-type]
    assert info.value.fields == ("invoice",)


def test_inverted_date_window_is_refused() -> None:
    ledger = ab.connect("memory")
    with pytest.raises(ab.ValidationError) as info:
        ledger.invoices.list(since=dt.date(2026, 2, 1), until=dt.date(2026, 1, 1))
    assert info.value.fields == ("since",)
