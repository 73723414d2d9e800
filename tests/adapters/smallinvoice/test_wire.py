"""Pure codec tests: no I/O."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from accounting_bridge.adapters.smallinvoice import wire
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

import accounting_bridge as ab
from accounting_bridge import jsoncodec
from accounting_bridge.transport.http import Response


def response(status: int, body: object) -> Response:
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", "X-Request-Id": "rid-1"}))
    return Response(status=status, headers=headers, body=jsoncodec.dumps(body).encode(), request_id="rid-1")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("DR", ab.InvoiceStatus.DRAFT),
        ("S", ab.InvoiceStatus.OPEN),
        ("P", ab.InvoiceStatus.PAID),
        ("PP", ab.InvoiceStatus.PARTIALLY_PAID),
        ("R1", ab.InvoiceStatus.OVERDUE),
        ("DC", ab.InvoiceStatus.OVERDUE),
        ("C", ab.InvoiceStatus.CANCELLED),
        ("D", ab.InvoiceStatus.CANCELLED),
        ("??", None),
    ],
)
def test_status_codes(code: str, status: ab.InvoiceStatus | None) -> None:
    assert wire.neutral_status(code) is status


def test_status_filters() -> None:
    assert wire.status_filter(ab.InvoiceStatus.OPEN) == {"status": "S"}
    overdue = wire.status_filter(ab.InvoiceStatus.OVERDUE)
    assert {f["status"] for f in overdue["or"]} == {"R", "R1", "R2", "R3", "DC"}


def test_payment_kinds_map_both_ways() -> None:
    assert wire.PAYMENT_KIND_BY_TYPE == {
        "N": ab.PaymentKind.PAYMENT,
        "C": ab.PaymentKind.CASH_DISCOUNT,
        "D": ab.PaymentKind.ROUNDING,
        "W": ab.PaymentKind.WRITE_OFF,
    }
    for code, kind in wire.PAYMENT_KIND_BY_TYPE.items():
        payment = ab.Payment(invoice_number="R-1", date=dt.date(2024, 1, 2), amount=Decimal("1.10"), kind=kind)
        body = wire.encode_payment(payment)
        assert body == {"type": code, "amount": Decimal("1.10"), "date": "2024-01-02"}
        decoded = wire.decode_payment({**body, "id": 5}, invoice_number="R-1")
        assert decoded.kind is kind and decoded.id == "5"


def test_error_info_reads_code_message_meta() -> None:
    info = wire.error_info(
        response(
            422,
            {
                "code": 1000,
                "message": "Validation failed",
                "meta": {"errors": [{"key": "email", "code": 1001, "message": "not an e-mail"}]},
            },
        )
    )
    assert info.fields == (ab.FieldError("email", "not an e-mail"),)
    assert info.message == "Validation failed (code 1000): email: not an e-mail"
    limit = wire.error_info(response(402, {"code": 4001, "message": "Limit", "meta": {"feature": "x", "limit": 3}}))
    assert "feature x, limit 3" in limit.message and limit.detail["meta"]["limit"] == 3
    oauth = wire.error_info(response(400, {"error": "invalid_grant", "error_description": "revoked"}))
    assert oauth.message == "revoked" and oauth.detail["error"] == "invalid_grant"
    text = Response(status=500, headers=CIMultiDictProxy(CIMultiDict()), body=b"<html>oops</html>")
    assert wire.error_info(text).message == "<html>oops</html>"


def test_decode_refuses_bad_shapes() -> None:
    with pytest.raises(ab.ResponseError):
        wire.items_of({"item": {}})
    with pytest.raises(ab.ResponseError):
        wire.item_of({"items": []})
    with pytest.raises(ab.ResponseError):
        wire.decode_invoice({"id": 1, "number": "R-1", "date": "soon", "positions": []})


def test_contact_round_trip_and_datetime_dates() -> None:
    customer = ab.Customer(
        number="K-1",
        name="Muster",
        kind=ab.CustomerKind.PERSON,
        email="a@b.ch",
        language="fr",
        payment_terms_days=10,
        address=ab.Address(street="Weg 1", postcode="3000", city="Bern", country="CH"),
    )
    body = wire.encode_contact(customer, create=True, gender="F")
    assert body["type"] == "P" and body["gender"] == "F" and body["relation"] == ["CL"]
    assert body["main_address"] == {"street": "Weg 1", "postcode": "3000", "city": "Bern", "country": "CH"}
    decoded = wire.decode_contact({**body, "id": 3, "created": "2021-08-01 17:09:52"})
    assert decoded == customer
    assert "gender" not in wire.encode_contact(customer, create=False)


money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2)


@given(price=money, quantity=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3))
def test_money_survives_the_wire_exactly(price: Decimal, quantity: Decimal) -> None:
    invoice = ab.Invoice(
        number="R-1",
        customer_number="K-1",
        issue_date=dt.date(2024, 2, 29),
        lines=[ab.InvoiceLine(description="x", unit_price=price, quantity=quantity, tax_rate=Decimal("8.1"))],
    )
    body = wire.encode_invoice(
        invoice,
        contact_id=1,
        contact_address_id=2,
        unit_ids=[7],
        currency="CHF",
        language="de",
        due=dt.date(2024, 3, 30),
    )
    sent = jsoncodec.loads(jsoncodec.dumps(body))  # what the server reads
    assert sent["positions"][0]["price"] == price
    decoded = wire.decode_invoice({**sent, "id": 9, "contact": {"number": "K-1"}})
    line = decoded.lines[0]
    assert (line.unit_price, line.quantity, line.tax_rate, line.unit) == (price, quantity, Decimal("8.1"), "7")
    assert isinstance(line.unit_price, Decimal)
    assert decoded.due_date == dt.date(2024, 3, 30) and decoded.customer_number == "K-1"
