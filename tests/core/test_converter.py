from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import accounting_bridge as ab
from accounting_bridge import jsoncodec

money = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9)


def sample_invoice() -> ab.Invoice:
    return ab.Invoice(
        number="R-1",
        customer=ab.Customer(number="K-1", name="Muster AG", address=ab.Address(city="Zürich", country="CH")),
        issue_date=dt.date(2026, 11, 1),
        lines=[ab.InvoiceLine(description="Beratung", quantity=Decimal("1.5"), unit_price=Decimal("1.0734"), tax_rate=Decimal("8.1"))],
        tax_lines=[ab.TaxLine(account="2200", amount=Decimal("0.13"))],
        kind=ab.InvoiceKind.CREDIT_NOTE,
        raw={"ignored": True},
    )


def test_dict_round_trip_keeps_decimals_dates_and_enums() -> None:
    invoice = sample_invoice()
    data = ab.to_dict(invoice)
    assert data["lines"][0]["unit_price"] == "1.0734"
    assert data["issue_date"] == "2026-11-01"
    assert data["kind"] == "credit_note"
    assert "raw" not in data
    assert ab.from_dict(ab.Invoice, data) == invoice


def test_json_round_trip_has_no_float() -> None:
    invoice = sample_invoice()
    text = ab.to_json(invoice)
    assert json.loads(text)["lines"][0]["quantity"] == "1.5"
    assert ab.from_json(ab.Invoice, text) == invoice


def test_documents_round_trip_as_base64() -> None:
    doc = ab.Document(filename="a.pdf", content=b"\x00\x01%PDF", content_type="application/pdf")
    assert ab.from_dict(ab.Document, ab.to_dict(doc)) == doc


def test_from_dict_reports_nested_field_paths_and_unknown_keys() -> None:
    data = ab.to_dict(sample_invoice())
    data["lines"][0]["unit_price"] = 1.07
    data["colour"] = "blue"
    with pytest.raises(ab.ValidationError) as info:
        ab.from_dict(ab.Invoice, data)
    assert "lines[0].unit_price" in info.value.fields
    assert "colour" in info.value.fields


def test_from_dict_reports_missing_required_keys() -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.from_dict(ab.Customer, {"number": "K-1"})
    assert info.value.fields == ("name",)


@given(amount=money)
def test_payment_amount_round_trips_exactly(amount: Decimal) -> None:
    if amount == 0:
        return
    payment = ab.Payment(invoice_number="R-1", date=dt.date(2026, 1, 1), amount=amount)
    again = ab.from_json(ab.Payment, ab.to_json(payment))
    assert again.amount == amount and str(again.amount) == str(amount)


@given(amount=st.decimals(allow_nan=False, allow_infinity=False))
def test_jsoncodec_writes_decimals_as_exact_numbers(amount: Decimal) -> None:
    text = jsoncodec.dumps({"amount": amount})
    assert jsoncodec.loads(text)["amount"] == amount
    assert "e" not in text.lower()


def test_jsoncodec_refuses_float() -> None:
    with pytest.raises(TypeError):
        jsoncodec.dumps({"amount": 0.1})
    assert jsoncodec.dumps({"a": [Decimal("1.10"), 2, None, True, "ü"], "d": dt.date(2026, 1, 2)}) == (
        '{"a":[1.10,2,null,true,"\\u00fc"],"d":"2026-01-02"}'
    )
