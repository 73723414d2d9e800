"""Pure codec tests: Danish money both ways (examples + hypothesis round trips), tokens, payload shapes."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

import attrs
import pytest
from accounting_bridge.adapters.multiregnskab import wire
from accounting_bridge.adapters.multiregnskab.s2s_contract import DEFAULT_CONTRACT
from hypothesis import given
from hypothesis import strategies as st

import accounting_bridge as ab
from accounting_bridge.errors import ConfigurationError, ResponseError

# --- money: examples ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9.999,99", "9999.99"),
        ("-1250,00", "-1250.00"),
        ("197,00", "197.00"),
        ("33,95", "33.95"),
        ("1.234.567,89", "1234567.89"),
        ("-1.250,5", "-1250.5"),
        ("1250.00", "1250.00"),  # international
        ("-1250.00", "-1250.00"),
        ("1,250.00", "1250.00"),
        ("1,234,567.89", "1234567.89"),
        ("1.250", "1250"),  # Danish thousands
        ("0.125", "0.125"),  # leading zero: a decimal point
        ("12.5", "12.5"),
        ("100", "100"),
        ("+5", "5"),
        ("100,00-", "-100.00"),
        (" 1 250,00 ", "1250.00"),
        ("1\u00a0250,00", "1250.00"),
        ("0,00", "0.00"),
    ],
)
def test_parse_money_examples(text: str, expected: str) -> None:
    value = wire.parse_money(text)
    assert value == Decimal(expected)
    assert str(value) == expected  # exact digits, no float


@pytest.mark.parametrize(
    "text", ["", "abc", "1,2,3", "3.35,00", "1.2.3", "1,250,00", "--5", "1e5", "12,", ",5", "1..0", "NaN", "1 2"]
)
def test_parse_money_refuses_garbage(text: str) -> None:
    with pytest.raises(wire.MoneyFormatError):
        wire.parse_money(text)


@pytest.mark.parametrize(
    ("value", "plain", "grouped"),
    [
        ("9999.99", "9999,99", "9.999,99"),
        ("-1250", "-1250,00", "-1.250,00"),
        ("0", "0,00", "0,00"),
        ("-0.00", "0,00", "0,00"),
        ("0.5", "0,50", "0,50"),
        ("1234567.891", "1234567,891", "1.234.567,891"),
    ],
)
def test_format_money_examples(value: str, plain: str, grouped: str) -> None:
    assert wire.format_money(Decimal(value)) == plain
    assert wire.format_money(Decimal(value), thousands=True) == grouped


def test_format_money_refuses_non_decimal() -> None:
    with pytest.raises(wire.MoneyFormatError):
        wire.format_money(1.5)  # type: ignore[arg-type]
    with pytest.raises(wire.MoneyFormatError):
        wire.format_money(Decimal("NaN"))


# --- money: the ambiguity policy (the API documents Danish amounts: an ambiguous text gets the Danish reading) ----


@pytest.mark.parametrize(
    ("text", "danish"),
    [
        ("1,250", "1.250"),  # international thousands would be 1250: Danish decimal comma wins
        ("-1,250", "-1.250"),
        ("999,999", "999.999"),
        ("1.250", "1250"),  # international decimal point would be 1.25: Danish thousands win
        ("-1.250", "-1250"),
        ("999.999", "999999"),
        ("1.250-", "-1250"),
    ],
)
def test_ambiguous_amounts_get_the_danish_reading(text: str, danish: str) -> None:
    value = wire.parse_money(text)
    assert value == Decimal(danish) and str(value) == danish


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,250,000", "1250000"),  # Danish would be two decimal commas: only the international reading exists
        ("1,250.00", "1250.00"),
        ("1250.000", "1250.000"),  # four-digit whole part: no Danish grouping possible
        ("0.125", "0.125"),  # a group cannot start with 0
        ("12.50", "12.50"),  # two digits after "." cannot be a thousands group
        ("1.250,00", "1250.00"),
    ],
)
def test_unambiguous_international_amounts_still_decode(text: str, value: str) -> None:
    assert str(wire.parse_money(text)) == value


def test_bank_posting_decodes_ambiguous_amounts_the_danish_way() -> None:
    def amount(text: str) -> Decimal:
        row = {"xid": 1, "bankDate": "2026-01-02", "bankText": "x", "bankAmount": text}
        return wire.decode_bank_posting(row, account="7", currency="DKK").amount

    assert amount("1,250") == Decimal("1.25")
    assert amount("1.250") == Decimal("1250")


# --- money: properties -------------------------------------------------------------------------------------------

money = st.decimals(
    min_value=Decimal("-999999999999.99"), max_value=Decimal("999999999999.99"), places=2, allow_nan=False
)


@given(money)
def test_danish_round_trip(value: Decimal) -> None:
    assert wire.parse_money(wire.format_money(value)) == value


@given(money)
def test_danish_grouped_round_trip(value: Decimal) -> None:
    text = wire.format_money(value, thousands=True)
    assert wire.parse_money(text) == value
    assert "." not in text or text.index(".") < text.index(",")


@given(money)
def test_international_input_decodes(value: Decimal) -> None:
    assert wire.parse_money(format(value, "f")) == value  # "1250.00"
    assert wire.parse_money(f"{value:,.2f}") == value  # "1,250.00"


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=4, allow_nan=False))
def test_format_keeps_extra_decimals(value: Decimal) -> None:
    assert wire.parse_money(wire.format_money(value)) == value


@given(money)
def test_canonical_text_round_trip(value: Decimal) -> None:
    text = wire.format_money(value)
    assert wire.format_money(wire.parse_money(text)) == text


@given(st.text(max_size=12))
def test_parse_money_never_crashes_otherwise(text: str) -> None:
    try:
        result = wire.parse_money(text)
    except wire.MoneyFormatError:
        return
    assert isinstance(result, Decimal) and result.is_finite()


# --- tokens ------------------------------------------------------------------------------------------------------


def test_token_expiry_without_zone_is_copenhagen_time() -> None:
    token = wire.decode_token({"token": "abc", "tokenExpires": "2026-01-15T12:00:00.000", "refreshToken": "r"})
    assert token.expires_at == _dt.datetime(2026, 1, 15, 11, 0, tzinfo=_dt.timezone.utc)  # CET = UTC+1
    summer = wire.decode_token(
        {"token": "abc", "tokenExpires": "2026-07-15T12:00:00.000"}, timezone="Europe/Copenhagen"
    )
    assert summer.expires_at == _dt.datetime(2026, 7, 15, 10, 0, tzinfo=_dt.timezone.utc)  # CEST = UTC+2
    assert summer.refresh_token is None


@pytest.mark.parametrize("data", [{}, {"token": ""}, [], {"token": "x", "tokenExpires": "tomorrow"}])
def test_bad_token_responses(data: object) -> None:
    with pytest.raises(ResponseError):
        wire.decode_token(data)


# --- shapes ------------------------------------------------------------------------------------------------------


def test_registration_payload_shape() -> None:
    reg = ab.Registration(
        date=_dt.date(2026, 11, 30),
        description="Taxi",
        lines=[
            ab.PostingLine(account="5820", amount=Decimal("-100")),
            ab.PostingLine(account="3620", amount=Decimal("45.00"), vat_code="DKI25"),
            ab.PostingLine(account="3630", amount=Decimal("55.00")),
        ],
    )
    payload = wire.encode_registration(reg, company_xid=7, file_xids=[11, 12])
    assert payload == {
        "companyXid": 7,
        "date": "2026-11-30",
        "description": "Taxi",
        "debitCreditlines": [
            {"accountNumber": "5820", "amount": "-100,00"},
            {"accountNumber": "3620", "amount": "45,00", "vatCode": "DKI25"},
            {"accountNumber": "3630", "amount": "55,00"},
        ],
        "filesToAttachXids": [{"xid": 11}, {"xid": 12}],
    }


def test_check_registration_limits() -> None:
    doc = ab.Document(filename="a.pdf", content=b"x", content_type="application/pdf")
    reg = ab.Registration(
        date=_dt.date(2026, 1, 1),
        description="x",
        lines=[ab.PostingLine(account="1", amount="1.005", text="t"), ab.PostingLine(account="2", amount="-1.005")],
        attachments=[doc] * 4,
        currency="EUR",
    )
    fields = {e.path for e in wire.check_registration(reg)}
    assert fields == {"attachments", "lines[0].amount", "lines[1].amount", "lines[0].text", "currency"}
    # a registration forged past the model's own check is refused here too
    object.__setattr__(
        reg, "lines", (ab.PostingLine(account="1", amount="5"), ab.PostingLine(account="2", amount="-4"))
    )
    assert "lines" in {e.path for e in wire.check_registration(reg)}


def test_customer_round_trip() -> None:
    customer = ab.Customer(
        number="K-1",
        name="Kunde ApS",
        kind=ab.CustomerKind.COMPANY,
        email="faktura@kunde.dk",
        address=ab.Address(street="Bygaden 1", postcode="8000", city="Aarhus C", country="dk"),
        vat_number="12345678",
        payment_terms_days=14,
        language="da",
    )
    payload = wire.encode_customer(customer, 1002)
    assert payload["countryCode"] == "DK" and payload["languageCode"] == "DA" and payload["currencyCode"] == "DKK"
    assert payload["paymentTermsType"] == "NET" and payload["xid"] == 0 and payload["entityVersion"] == 0
    decoded = wire.decode_customer({**payload, "xid": 99})
    expected = attrs.evolve(customer, currency="DKK", address=attrs.evolve(customer.address, country="DK"))
    assert decoded == expected
    assert decoded.id == "99" and decoded.address is not None and decoded.address.country == "DK"
    assert wire.customer_differences(payload, {**payload, "xid": 99, "entityVersion": 3}) == []
    assert wire.customer_differences(payload, {**payload, "city": "Odense"}) == ["city"]


def test_bank_posting_decodes_danish_amount() -> None:
    posting = wire.decode_bank_posting(
        {"xid": 5, "bankDate": "2024-12-31", "bankText": "Gebyr", "bankAmount": "-1.197,50"},
        account="7",
        currency="DKK",
    )
    assert posting.amount == Decimal("-1197.50") and posting.date == _dt.date(2024, 12, 31) and posting.id == "5"
    with pytest.raises(ResponseError):
        wire.decode_bank_posting(
            {"xid": 5, "bankDate": "2024-12-31", "bankText": "x", "bankAmount": "x"}, account="7", currency=None
        )


def test_rename_keys_nested() -> None:
    data = {"debitCreditlines": [{"amount": "1,00"}], "xid": 1}
    assert wire.rename_keys(data, {"debitCreditlines": "lines", "amount": "belob"}) == {
        "lines": [{"belob": "1,00"}],
        "xid": 1,
    }


def test_contract_overrides() -> None:
    contract = DEFAULT_CONTRACT.with_overrides(
        paths={"bank_transactions": "/bank/{companyXid}"}, fields={"bpList": "items"}
    )
    assert contract.path("bank_transactions", companyXid=5) == "/bank/5"
    assert contract.renames == {"bpList": "items"} and contract.inverse_renames == {"items": "bpList"}
    assert DEFAULT_CONTRACT.path("bank_transactions") == "/bankPostings"  # the default is untouched
    assert contract.with_overrides(paths={"delete_file": ""}).path("delete_file", companyXid=1, xid=2) is None
    with pytest.raises(ConfigurationError, match="unknown S2S path"):
        DEFAULT_CONTRACT.with_overrides(paths={"nope": "/x"})
    with pytest.raises(ConfigurationError, match="unknown S2S field"):
        DEFAULT_CONTRACT.with_overrides(fields={"nope": "x"})


def test_invoice_line_amounts_are_rounded_half_up_to_ore() -> None:
    lines = [
        ab.InvoiceLine(description="a", quantity="1.5", unit_price="19.95"),  # 29.925 → 29.93
        ab.InvoiceLine(description="b", quantity="1", unit_price="0.005"),  # 0.005 → 0.01
        ab.InvoiceLine(description="c", quantity="1", unit_price="-29.925"),  # half away from zero: -29.93
        ab.InvoiceLine(description="d", quantity="3", unit_price="0.333"),  # 0.999 → 1.00
        ab.InvoiceLine(description="e", quantity="2", unit_price="10.004"),  # 20.008 → 20.01
    ]
    invoice = ab.Invoice(number="F-1", customer_number="K-1", issue_date=_dt.date(2026, 1, 2), lines=lines)
    payload = wire.encode_invoice(invoice, company_xid=1, customer_xid=2, line_products=[(3, None)] * len(lines))
    assert [ln["amount"] for ln in payload["lines"]] == ["29,93", "0,01", "-29,93", "1,00", "20,01"]
    assert [wire.invoice_line_amount(line) for line in lines] == [
        Decimal("29.93"),
        Decimal("0.01"),
        Decimal("-29.93"),
        Decimal("1.00"),
        Decimal("20.01"),
    ]
    assert payload["lines"][0]["priceEach"] == "19,95" and payload["lines"][0]["numberOfUnits"] == "1,5"
