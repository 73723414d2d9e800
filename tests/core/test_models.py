from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest

import accounting_bridge as ab


def line(**kw: object) -> ab.InvoiceLine:
    values: dict[str, object] = {"description": "Consulting", "unit_price": Decimal("140.00")}
    values.update(kw)
    return ab.InvoiceLine(**values)  # type: ignore[arg-type]


def test_money_is_decimal_and_strings_are_accepted_exactly() -> None:
    item = line(unit_price="0.10", quantity=3)
    assert item.unit_price == Decimal("0.10") and isinstance(item.unit_price, Decimal)
    assert item.quantity == Decimal(3)
    assert item.net_amount == Decimal("0.30")


def test_float_money_is_refused_with_the_field_name() -> None:
    with pytest.raises(ab.ValidationError) as info:
        line(unit_price=0.1)
    assert info.value.fields == ("unit_price",)
    assert "float" in str(info.value)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "12,50", "abc"])
def test_non_finite_or_unreadable_money_is_refused(bad: str) -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.Payment(invoice_number="R-1", date=dt.date(2026, 1, 1), amount=bad)  # type: ignore[arg-type]
    assert info.value.fields == ("amount",)


def test_datetime_is_not_a_date() -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.Payment(invoice_number="R-1", date=dt.datetime(2026, 1, 1, 23, 0), amount=Decimal(5))
    assert info.value.fields == ("date",)
    assert ab.Payment(invoice_number="R-1", date="2026-01-01", amount=Decimal(5)).date == dt.date(2026, 1, 1)  # type: ignore[arg-type]


def test_all_coercion_problems_are_reported_together() -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.BankTransaction(account="1020", date="yesterday", amount=1.5)  # type: ignore[arg-type]
    assert set(info.value.fields) == {"date", "amount"}


def test_invoice_rules_name_their_fields() -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.Invoice(number="", issue_date=dt.date(2026, 3, 1), due_date=dt.date(2026, 2, 1), lines=[])
    assert set(info.value.fields) == {"number", "customer_number", "due_date", "lines"}
    assert info.value.model == "Invoice"


def test_invoice_lines_must_be_lines() -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.Invoice(number="R-1", customer_number="K-1", issue_date=dt.date(2026, 1, 1), lines=[line(), "x"])  # type: ignore[list-item]
    assert info.value.fields == ("lines[1]",)


def test_enum_fields_accept_values_and_refuse_others() -> None:
    payment = ab.Payment(invoice_number="R", date=dt.date(2026, 1, 1), amount=Decimal(1), kind="bank_fee")  # type: ignore[arg-type]
    assert payment.kind is ab.PaymentKind.BANK_FEE
    with pytest.raises(ab.ValidationError) as info:
        ab.Payment(invoice_number="R", date=dt.date(2026, 1, 1), amount=Decimal(1), kind="tip")  # type: ignore[arg-type]
    assert info.value.fields == ("kind",)


def test_registration_must_balance() -> None:
    lines = [ab.PostingLine(account="5000", amount=Decimal("100.00")), ab.PostingLine(account="1090", amount=Decimal("-99.99"))]
    with pytest.raises(ab.ValidationError) as info:
        ab.Registration(date=dt.date(2026, 11, 30), description="Payroll", lines=lines)
    assert info.value.fields == ("lines",)
    assert "0.01" in str(info.value)
    balanced = [lines[0], ab.PostingLine(account="1090", amount=Decimal("-100.00"))]
    reg = ab.Registration(date=dt.date(2026, 11, 30), description="Payroll", lines=balanced)
    assert isinstance(reg.lines, tuple)


def test_models_are_frozen_keyword_only_and_raw_is_read_only() -> None:
    customer = ab.Customer(number="K-1", name="Muster AG", raw={"id": "7"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        customer.name = "Other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        customer.raw["id"] = "8"  # type: ignore[index]
    with pytest.raises(TypeError):
        ab.Customer("K-1", "Muster AG")  # type: ignore[misc]
    assert customer == ab.Customer(number="K-1", name="Muster AG")  # raw and id do not take part in equality


def test_customer_email_and_terms() -> None:
    with pytest.raises(ab.ValidationError) as info:
        ab.Customer(number="K-1", name="X", email="nobody", payment_terms_days=-1)
    assert set(info.value.fields) == {"email", "payment_terms_days"}


def test_document_repr_hides_content() -> None:
    doc = ab.Document(filename="payslip.pdf", content=b"secret salary data", content_type="application/pdf")
    assert "salary" not in repr(doc)
    with pytest.raises(ab.ValidationError):
        ab.Document(filename="empty.pdf", content=b"")


def test_line_net_amount_applies_discount_exactly() -> None:
    assert line(quantity=Decimal("3"), unit_price=Decimal("33.33"), discount_percent=Decimal("10")).net_amount == Decimal(
        "89.9910"
    )


# --- text that can be sent: lone surrogates, control characters (issue #8.6) ------------------------------------

_MINIMAL: dict[type, dict[str, object]] = {
    ab.Address: {},
    ab.Customer: {"number": "K-1", "name": "Muster AG"},
    ab.InvoiceLine: {"description": "Consulting", "unit_price": Decimal("1")},
    ab.TaxLine: {"account": "2200", "amount": Decimal("1")},
    ab.Invoice: {"number": "R-1", "customer_number": "K-1", "issue_date": dt.date(2026, 1, 1), "lines": [line()]},
    ab.Payment: {"invoice_number": "R-1", "date": dt.date(2026, 1, 1), "amount": Decimal("1")},
    ab.BankTransaction: {"account": "1020", "date": dt.date(2026, 1, 1), "amount": Decimal("1")},
    ab.Document: {"filename": "a.pdf", "content": b"%PDF", "content_type": "application/pdf"},
    ab.PostingLine: {"account": "1020", "amount": Decimal("1")},
    ab.Registration: {
        "date": dt.date(2026, 1, 1),
        "description": "Payroll",
        "lines": [
            ab.PostingLine(account="5000", amount=Decimal(1)),
            ab.PostingLine(account="1090", amount=Decimal(-1)),
        ],
    },
}

#: business keys: no control character at all (free text allows tab, LF and CR)
_KEYS = {
    (ab.Address, "postcode"), (ab.Address, "country"),
    (ab.Customer, "number"), (ab.Customer, "email"), (ab.Customer, "phone"), (ab.Customer, "currency"),
    (ab.Customer, "language"), (ab.Customer, "vat_number"), (ab.Customer, "iban"), (ab.Customer, "bic"),
    (ab.InvoiceLine, "item_number"), (ab.InvoiceLine, "account"), (ab.InvoiceLine, "tax_code"),
    (ab.InvoiceLine, "unit"), (ab.TaxLine, "account"),
    (ab.Invoice, "number"), (ab.Invoice, "customer_number"), (ab.Invoice, "currency"), (ab.Invoice, "order_number"),
    (ab.Invoice, "payment_reference"),
    (ab.Payment, "invoice_number"), (ab.Payment, "account"), (ab.Payment, "currency"), (ab.Payment, "reference"),
    (ab.BankTransaction, "account"), (ab.BankTransaction, "currency"), (ab.BankTransaction, "reference"),
    (ab.Document, "filename"), (ab.Document, "content_type"),
    (ab.PostingLine, "account"), (ab.PostingLine, "vat_code"),
    (ab.Registration, "reference"), (ab.Registration, "currency"),
}  # fmt: skip


def _text_fields() -> list[tuple[type, str]]:
    """Every caller-settable text field of every input model (ids are set by the backend)."""
    return [
        (cls, field.name)
        for cls in _MINIMAL
        for field in attrs.fields(attrs.resolve_types(cls))
        if field.type in (str, str | None) and field.name != "id"
    ]


def _build(cls: type, name: str, value: str) -> object:
    values = dict(_MINIMAL[cls])
    values[name] = value
    if cls is ab.Customer and name == "email":
        values[name] = "a@b" + value
    return cls(**values)


def test_every_text_field_is_classified() -> None:
    assert len(_text_fields()) > 40
    assert set(_text_fields()) >= _KEYS


@pytest.mark.parametrize(("cls", "name"), _text_fields(), ids=lambda v: getattr(v, "__name__", v))
def test_a_lone_surrogate_is_refused_in_every_text_field(cls: type, name: str) -> None:
    with pytest.raises(ab.ValidationError) as info:
        _build(cls, name, "x\ud800")
    assert set(info.value.fields) == {name}
    assert "surrogate" in str(info.value)


@pytest.mark.parametrize(("cls", "name"), _text_fields(), ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x0b", "\x1b", "\x7f", "\x85"], ids=repr)
def test_nul_and_control_characters_are_refused_in_every_text_field(cls: type, name: str, char: str) -> None:
    with pytest.raises(ab.ValidationError) as info:
        _build(cls, name, f"a{char}b")
    assert set(info.value.fields) == {name}
    assert f"U+{ord(char):04X}" in str(info.value)


@pytest.mark.parametrize(("cls", "name"), _text_fields(), ids=lambda v: getattr(v, "__name__", v))
def test_tab_and_line_breaks_are_free_text_but_never_part_of_a_key(cls: type, name: str) -> None:
    text = "line one\r\nline two\tend"
    if (cls, name) in _KEYS:
        with pytest.raises(ab.ValidationError) as info:
            _build(cls, name, text)
        assert set(info.value.fields) == {name}
    else:
        assert getattr(_build(cls, name, text), name) == text


def test_other_unicode_is_text() -> None:
    customer = ab.Customer(number="K-Ø1", name="Bäckerei Müller 🥐 — Zürich", contact_name="Łukasz\u2028Nowak")
    assert customer.name == "Bäckerei Müller 🥐 — Zürich"


def test_a_bad_character_in_a_nested_model_names_its_path() -> None:
    data = {
        "number": "R-1",
        "customer_number": "K-1",
        "issue_date": "2026-01-01",
        "lines": [{"description": "ok", "unit_price": "1"}, {"description": "x\ud800", "unit_price": "1"}],
    }
    with pytest.raises(ab.ValidationError) as info:
        ab.from_dict(ab.Invoice, data)
    assert info.value.fields == ("lines[1].description",)
