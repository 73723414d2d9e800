"""The fast paths of issue 9: models validated by one check compiled per class, `to_dict` by one generated function
per model — each exactly equivalent to the full validation / cattrs' own unstructuring."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import attrs
import pytest

import accounting_bridge as ab
from accounting_bridge import converter, models

DAY = dt.date(2026, 11, 2)
LINE = ab.InvoiceLine(description="Beratung", unit_price=D("140.00"), quantity=D("2"), tax_rate=D("8.1"))
CUSTOMER = ab.Customer(number="K-1", name="Muster AG", email="a@b.ch", address=ab.Address(city="Bern"))
POSTINGS = [ab.PostingLine(account="6000", amount=D("10.00")), ab.PostingLine(account="1020", amount=D("-10.00"))]

#: one valid keyword set per validated model
VALID: dict[type[Any], dict[str, Any]] = {
    ab.Address: {"street": "Weg 1", "postcode": "3000", "city": "Bern", "country": "CH"},
    ab.Customer: {"number": "K-1", "name": "Muster AG", "email": "a@b.ch", "payment_terms_days": 30,
                  "address": ab.Address(city="Bern"), "currency": "CHF"},
    ab.InvoiceLine: {"description": "Beratung", "unit_price": D("140.00"), "quantity": D("2"), "tax_rate": D("8.1"),
                     "discount_percent": D("5"), "account": "3400", "note": "n"},
    ab.TaxLine: {"account": "2201", "amount": D("8.10")},
    ab.Invoice: {"number": "R-1", "customer_number": "K-1", "issue_date": DAY, "due_date": DAY, "lines": [LINE],
                 "tax_lines": [ab.TaxLine(account="2201", amount=D("1"))], "title": "t", "currency": "CHF",
                 "status": ab.InvoiceStatus.OPEN, "total": D("1.00")},
    ab.Payment: {"invoice_number": "R-1", "date": DAY, "amount": D("5.00"), "reference": "ref", "memo": "m"},
    ab.BankTransaction: {"account": "1020", "date": DAY, "amount": D("-5.00"), "text": "t", "value_date": DAY},
    ab.Document: {"filename": "a.pdf", "content": b"%PDF", "content_type": "application/pdf", "description": "d"},
    ab.PostingLine: {"account": "6000", "amount": D("10.00"), "vat_code": "V", "text": "t"},
    ab.Registration: {"date": DAY, "description": "Lohn", "lines": POSTINGS, "reference": "L-1", "currency": "CHF"},
}  # fmt: skip

#: values every field is tried with (plus the valid set's own value)
ODD_VALUES: list[Any] = [
    None, "", "  ", "12", "2026-11-02", " 7.50 ", "x\x00y", "a\tb", "a\nb", "\ud800", "\x85", 0, 1, -1, True, 1.5,
    D("NaN"), D("Infinity"), D("0"), D("-3"), D("150"), dt.datetime(2026, 11, 2, 12), DAY, b"", b"x", [], (),
    [LINE, LINE], [LINE, "x"], (POSTINGS[0],), "open", "OPEN", ab.InvoiceStatus.PAID, ab.CustomerKind.PERSON,
    CUSTOMER, ab.Address(), {"a": 1},
]  # fmt: skip


def _variants() -> Iterator[tuple[type[Any], dict[str, Any]]]:
    for cls, valid in VALID.items():
        yield cls, valid
        for field in attrs.fields(cls):
            if field.name in ("raw",):
                continue
            for odd in ODD_VALUES:
                yield cls, {**valid, field.name: odd}


def _outcome(build: Any) -> Any:
    try:
        model = build()
    except ab.ValidationError as exc:
        return ("refused", [(e.path, e.message) for e in exc.errors])
    except Exception as exc:  # the full check's own crash on nonsense must be the same crash
        return ("crash", type(exc).__name__)
    return ("built", [(f.name, type(v), v) for f in attrs.fields(type(model)) for v in [getattr(model, f.name)]])


def _full_only(cls: type[Any], kwargs: dict[str, Any]) -> Any:
    fast = cls.__attrs_post_init__
    cls.__attrs_post_init__ = fast.full_check
    try:
        return _outcome(lambda: cls(**kwargs))
    finally:
        cls.__attrs_post_init__ = fast


@pytest.mark.parametrize("receiving", [False, True], ids=["caller-input", "from-backend"])
def test_the_fast_check_decides_exactly_as_the_full_validation(receiving: bool) -> None:
    compared = 0
    for cls, kwargs in _variants():
        if receiving:
            with models.received_from_backend():
                fast, full = _outcome(lambda: cls(**kwargs)), _full_only(cls, kwargs)  # noqa: B023
        else:
            fast, full = _outcome(lambda: cls(**kwargs)), _full_only(cls, kwargs)  # noqa: B023
        assert fast == full, (cls.__name__, kwargs)
        compared += 1
    assert compared > 1000


def test_valid_data_never_reaches_the_full_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for cls in VALID:
        globals_ = cls.__attrs_post_init__.__globals__
        full = globals_["_full"]
        monkeypatch.setitem(globals_, "_full", lambda self, full=full: calls.append(type(self).__name__) or full(self))
    for cls, kwargs in VALID.items():
        cls(**kwargs)
    with models.received_from_backend():
        ab.Customer(number="K-1", name="Odd\x07name")  # a stray control character from a backend: still fast
    assert calls == []
    ab.InvoiceLine(description="x", unit_price="1.50")  # text to normalise: the full path, which converts it
    assert calls == ["InvoiceLine"]


def test_lines_given_as_a_list_are_stored_as_a_tuple() -> None:
    invoice = ab.Invoice(number="R-1", customer_number="K-1", issue_date=DAY, lines=[LINE])
    assert invoice.lines == (LINE,) and type(invoice.lines) is tuple


@pytest.mark.parametrize("cls", list(VALID), ids=lambda c: c.__name__)
def test_to_dict_is_what_cattrs_generates(cls: type[Any]) -> None:
    kwargs = {**VALID[cls]}
    if cls is ab.Invoice:
        kwargs = {**kwargs, "customer": CUSTOMER, "customer_number": "K-1"}
    model = cls(**kwargs)
    assert ab.to_dict(model) == converter.cattrs_unstructure_fn(cls)(model)
    assert ab.from_dict(cls, ab.to_dict(model)) == model
