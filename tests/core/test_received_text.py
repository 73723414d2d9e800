"""Server data with odd text (a stray control character, a lone surrogate) is kept, not refused: one odd record
must not break a whole listing. The same text from a caller is refused (it would be sent)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab import wire as mr_wire
from accounting_bridge.adapters.runmyaccounts import wire as rma_wire
from accounting_bridge.adapters.smallinvoice import wire as si_wire

import accounting_bridge as ab
from accounting_bridge.models import received_from_backend

ODD = ["Bäckerei \x96 Nord", "Tab\tbed\x0bname", "half \ud800 pair"]


@pytest.mark.parametrize("odd", ODD)
def test_a_caller_model_with_unsendable_text_is_refused(odd: str) -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.Customer(number="K-1", name=odd)
    assert "name" in info.value.fields


@pytest.mark.parametrize("odd", ODD)
def test_a_model_received_from_a_backend_keeps_the_text(odd: str) -> None:
    with received_from_backend():
        assert ab.Customer(number="K-1", name=odd).name == odd
    with pytest.raises(ab.ValidationError):  # the context ends with the block
        ab.Customer(number="K-1", name=odd)


def test_other_checks_still_hold_for_received_models() -> None:
    with received_from_backend(), pytest.raises(ab.ValidationError):
        ab.Payment(invoice_number="R-1", date=dt.date(2026, 11, 30), amount=1.5)  # type: ignore[arg-type]


DECODERS: list[tuple[str, Callable[[str], Any]]] = [
    ("runmyaccounts customer", lambda odd: rma_wire.decode_customer({"customernumber": "K-1", "name": odd}).name),
    ("smallinvoice contact", lambda odd: si_wire.decode_contact({"id": 7, "number": "K-1", "name": odd}).name),
    ("multiregnskab customer", lambda odd: mr_wire.decode_customer(
        {"xid": 1, "customerNumber": "K-1", "customerName": odd}).name),
    ("multiregnskab bank posting", lambda odd: mr_wire.decode_bank_posting(
        {"xid": 5, "bankDate": "2026-11-30", "bankAmount": "-1,00", "bankText": odd}, account="1", currency="DKK"
    ).text),
]  # fmt: skip


@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize(("what", "decode"), DECODERS, ids=[d[0] for d in DECODERS])
def test_adapters_decode_odd_server_text(what: str, decode: Callable[[str], Any], odd: str) -> None:
    assert decode(odd) == odd


def test_a_received_amount_is_still_decimal() -> None:
    posting = mr_wire.decode_bank_posting(
        {"xid": 5, "bankDate": "2026-11-30", "bankAmount": "-1,00", "bankText": "x\x0b"}, account="1", currency="DKK"
    )
    assert posting.amount == Decimal("-1.00")
