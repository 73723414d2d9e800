"""One test per documented payload in shared/backends/runmyaccounts-examples/: the decoder gives the right
Decimals and local dates; the encoder's output is structurally equal to the request examples."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from accounting_bridge.adapters.runmyaccounts import records, wire

from accounting_bridge import InvoiceKind, InvoiceStatus, PaymentKind, ResponseError

EXAMPLES = Path(__file__).parent / "fixtures" / "examples"  # copy of shared/backends/runmyaccounts-examples
if not EXAMPLES.exists():  # pragma: no cover
    EXAMPLES = Path("/work/shared/backends/runmyaccounts-examples")

DATE_KEYS = {"transdate", "duedate", "datepaid", "created", "price_update", "date_received"}
#: Request keys the neutral models do not carry (sent through `extra=` or not at all).
NON_NEUTRAL = ("salutation", "gender", "remittancevoucher", "department", "language_code", "price_update")
CUSTOMER_NON_NEUTRAL = (*NON_NEUTRAL, "created", "fax", "mobile", "cc", "bcc", "notes", "arap_accno", "payment_accno")


def load(name: str) -> Any:
    data = (EXAMPLES / name).read_bytes()
    return wire.parse_xml(data) if name.endswith(".xml") else wire.parse_json(data)


def local_dates(tree: Any) -> Any:
    """Dates compared as local calendar dates (a timestamp and a midnight of the same day are equal)."""
    if isinstance(tree, dict):
        return {k: (wire.parse_date(v) if k in DATE_KEYS else local_dates(v)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [local_dates(v) for v in tree]
    return tree


def same_structure(produced: Any, expected: Any, drop: tuple[str, ...] = NON_NEUTRAL) -> None:
    assert local_dates(wire.strip_empty(produced, drop)) == local_dates(wire.strip_empty(expected, drop))


def encoded_json(tree: Any) -> Any:
    return wire.parse_json(wire.json_bytes(tree))


def encoded_xml(root: str, tree: Any) -> Any:
    return wire.parse_xml(wire.render_xml(root, tree))


# --- requests: decode, re-encode, compare -------------------------------------------------------------------------


def test_01_invoice_parts_multi_xml() -> None:
    tree = load("01_invoice_parts_multi.request.xml")
    invoice = wire.decode_invoice(tree)
    assert invoice.issue_date == _dt.date(2024, 3, 4)
    assert invoice.due_date == _dt.date(2024, 4, 3)
    assert [line.quantity for line in invoice.lines] == [Decimal("2.0"), Decimal("3.5"), Decimal("1.0")]
    assert invoice.lines[0].discount_percent == Decimal("10.0")
    assert invoice.lines[2].unit_price == Decimal("12.5")
    out = encoded_xml("invoice", wire.encode_invoice(invoice))
    assert isinstance(out["parts"]["part"], list) and len(out["parts"]["part"]) == 3
    same_structure(out, tree)


def test_02_invoice_parts_multi_json_is_identical() -> None:
    tree = load("02_invoice_parts_multi.request.json")
    invoice = wire.decode_invoice(tree)
    assert invoice.customer_number == "K-1001"
    assert invoice.lines[1].net_amount == Decimal("490.0")
    produced = wire.render_json(wire.encode_invoice(invoice))
    assert produced == tree  # key for key, string for string
    assert isinstance(produced["parts"], dict) and isinstance(produced["parts"]["part"], list)


def test_03_single_part_with_embedded_customer() -> None:
    tree = load("03_invoice_single_part_with_customer.request.json")
    invoice = wire.decode_invoice(tree)
    assert invoice.prices_include_tax is True
    assert invoice.customer is not None and invoice.customer.number == "K-2040"
    assert invoice.customer.payment_terms_days == 14
    assert invoice.lines[0].unit_price == Decimal("162.15")
    produced = wire.render_json(wire.encode_invoice(invoice, extra={"department": "Beratung--10320"}))
    assert isinstance(produced["parts"]["part"], dict)  # one item -> object, never [{...}]
    assert produced["department"] == "Beratung--10320"
    assert "customernumber" not in produced  # embedded customer instead of the reference
    same_structure(produced, tree)


def test_04_transaction_multi_vat_xml() -> None:
    tree = load("04_invoice_transaction_multi_vat.request.xml")
    invoice = wire.decode_invoice(tree)
    assert [line.account for line in invoice.lines] == ["3400", "3200", "3210"]
    assert [t.amount for t in invoice.tax_lines] == [Decimal("126.36"), Decimal("2.5")]
    out = encoded_xml("invoice", wire.encode_invoice(invoice))
    same_structure(out, tree)


def test_05_transaction_multi_vat_json_is_identical() -> None:
    tree = load("05_invoice_transaction_multi_vat.request.json")
    invoice = wire.decode_invoice(tree)
    assert sum((line.net_amount for line in invoice.lines), Decimal(0)) == Decimal("1656.0")
    assert wire.render_json(wire.encode_invoice(invoice)) == tree


def test_06_credit_note_negative_single_entries() -> None:
    tree = load("06_credit_note_transaction_negative.request.json")
    invoice = wire.decode_invoice(tree)
    assert invoice.kind is InvoiceKind.CREDIT_NOTE
    assert invoice.lines[0].unit_price == Decimal("-310.0")
    assert invoice.tax_lines[0].amount == Decimal("-25.11")
    produced = wire.render_json(wire.encode_invoice(invoice))
    assert produced == tree
    assert isinstance(produced["incomeentries"]["incomeentry"], dict)


def test_07_credit_note_parts_negative_quantity_xml() -> None:
    tree = load("07_credit_note_parts_negative_qty.request.xml")
    invoice = wire.decode_invoice(tree)
    assert invoice.kind is InvoiceKind.CREDIT_NOTE
    assert invoice.lines[0].quantity == Decimal("-1.0")
    same_structure(encoded_xml("invoice", wire.encode_invoice(invoice)), tree)


def test_07b_positive_credit_note_is_booked_negative() -> None:
    tree = load("07_credit_note_parts_negative_qty.request.xml")
    invoice = wire.decode_invoice(tree)
    import attrs

    positive = attrs.evolve(invoice, lines=[attrs.evolve(invoice.lines[0], quantity=Decimal(1))])
    assert wire.encode_invoice(positive)["parts"]["part"][0]["quantity"] == "-1.0"


def test_08_storno_counter_invoice() -> None:
    tree = load("08_storno_counter_invoice.request.json")
    invoice = wire.decode_invoice(tree)
    assert invoice.lines[0].net_amount == Decimal("-972.900")
    assert wire.render_json(wire.encode_invoice(invoice)) == tree


def test_09_akonto_final_invoice() -> None:
    tree = load("09_akonto_final_invoice.request.json")
    invoice = wire.decode_invoice(tree)
    assert invoice.kind is InvoiceKind.INVOICE
    assert [(ln.account, ln.unit_price) for ln in invoice.lines] == [
        ("2030", Decimal("-2000.0")),
        ("3400", Decimal("5400.0")),
    ]
    assert invoice.issue_date == _dt.date(2024, 6, 28)
    assert wire.render_json(wire.encode_invoice(invoice)) == tree


def test_10_payment_full_transfer_account() -> None:
    tree = load("10_payment_full_transfer_account.request.json")
    payment = wire.decode_payment(tree, invoice_number="240118")
    assert payment.amount == Decimal("972.9")
    assert payment.date == _dt.date(2024, 3, 28)
    assert payment.reference == "ZKB-Avis 77410"
    same_structure(encoded_json(wire.encode_payment(payment, account="1090")), tree)


@pytest.mark.parametrize(
    ("name", "amount", "account", "memo"),
    [
        ("11_payment_skonto_step1_money.request.xml", "1749.16", "1090", "Zahlung"),
        ("12_payment_skonto_step2_deduction.request.xml", "35.7", "3800", "Skonto 2%"),
    ],
)
def test_11_12_skonto_as_two_payments(name: str, amount: str, account: str, memo: str) -> None:
    tree = load(name)
    payment = wire.decode_payment(tree, invoice_number="240119", kinds={"3800": PaymentKind.CASH_DISCOUNT})
    assert payment.amount == Decimal(amount)
    assert payment.date == _dt.date(2024, 3, 15)
    assert payment.memo == memo
    assert (payment.kind is PaymentKind.CASH_DISCOUNT) == (account == "3800")
    same_structure(encoded_xml("payment", wire.encode_payment(payment, account=account)), tree)


def test_13_payment_created_response() -> None:
    payment = wire.decode_payment(load("13_payment_created.response.json"))
    assert payment.id == "20417"
    assert payment.invoice_number == "240119"
    assert payment.amount == Decimal("1749.16")
    assert payment.currency == "CHF"
    assert payment.raw is not None and payment.raw["exchangerate"] == "1.0"


def test_14_payment_list() -> None:
    payments = [
        wire.decode_payment(p, kinds={"3800": PaymentKind.CASH_DISCOUNT})
        for p in wire.items(load("14_payment_list.response.json"), "payment")
    ]
    assert [p.id for p in payments] == ["20417", "20418"]
    assert sum((p.amount for p in payments), Decimal(0)) == Decimal("1784.86")
    assert payments[1].kind is PaymentKind.CASH_DISCOUNT


def test_15_set_as_processed_form() -> None:
    text = (EXAMPLES / "15_set_as_processed.request.http").read_text()
    body = text.strip().splitlines()[-1]
    assert wire.processed_form(["20417", "20418"]) == body


@pytest.mark.parametrize("name", ["16_customer_upsert.request.xml", "17_customer_upsert.request.json"])
def test_16_17_customer_upsert(name: str) -> None:
    tree = load(name)
    customer = wire.decode_customer(tree)
    assert customer.number in ("K-1001", "K-3007")
    assert customer.payment_terms_days in (30, 10)
    produced = wire.encode_customer(customer)
    out = encoded_xml("customer", produced) if name.endswith(".xml") else encoded_json(produced)
    same_structure(out, tree, CUSTOMER_NON_NEUTRAL)


def test_18_customer_get_response() -> None:
    customer = wire.decode_customer(load("18_customer_get.response.json"))
    assert customer.id == "10233"
    assert customer.language == "de"
    assert customer.iban == "CH9300762011623852957"
    assert customer.address is not None and customer.address.city == "Luzern"
    assert customer.raw is not None and customer.raw["chart"]["@accno"] == "1100"


def test_19_empty_list_xml() -> None:
    assert wire.items(load("19_invoices_list_empty.response.xml"), "invoice") == []


def test_20_empty_list_json_every_variant() -> None:
    lines = (EXAMPLES / "20_invoices_list_empty.response.json.txt").read_text().splitlines()
    documented = "\n".join(line for line in lines if not line.startswith("#"))
    for body in (documented, "null", "{}", '{"invoice": []}', "", '{"invoice": null}', '{"invoice": ""}'):
        assert wire.items(wire.parse_json(body.encode()), "invoice") == []


def test_21_single_invoice_is_an_object() -> None:
    (tree,) = wire.items(load("21_invoices_list_single.response.json"), "invoice")
    invoice = wire.decode_invoice(tree)
    assert invoice.issue_date == _dt.date(2024, 3, 5)  # local date, not the UTC 4th
    assert invoice.total == Decimal("972.9")
    assert invoice.net_total == Decimal("900.0")
    assert invoice.tax_total == Decimal("72.9")
    assert invoice.status is InvoiceStatus.OPEN
    assert len(invoice.lines) == 1 and invoice.lines[0].account == "3400"
    assert invoice.customer_number == "K-2040"


def _check_many(invoices: list[Any]) -> None:
    first, second = (wire.decode_invoice(t) for t in invoices)
    assert first.status is InvoiceStatus.PAID and first.paid_amount == Decimal("1477.19")
    assert second.status is InvoiceStatus.OVERDUE and second.total == Decimal("1784.86")
    assert second.due_date == _dt.date(2024, 4, 5)
    assert len(second.lines) == 1 and second.lines[0].unit_price == Decimal("1656.0")  # summary line


def test_22_many_invoices_json() -> None:
    invoices = wire.items(load("22_invoices_list_many.response.json"), "invoice")
    assert len(invoices) == 2
    assert len(wire.nested(invoices[0], "parts", "part")) == 3
    _check_many(invoices)


def test_23_many_invoices_xml_equals_json_shape() -> None:
    invoices = wire.items(load("23_invoices_list_many.response.xml"), "invoice")
    assert len(invoices) == 2
    assert len(wire.nested(invoices[0], "parts", "part")) == 2
    _check_many(invoices)


def test_24_saldo_v2() -> None:
    rows = records.saldo_rows(load("24_saldo_v2.response.json"), version=2)
    assert (rows[0].accno, rows[0].amount) == ("1100", Decimal("1784.8600"))
    assert sum((r.amount for r in rows), Decimal(0)) == Decimal("8653.42")


def test_25_saldo_v2_single_row_xml() -> None:
    (row,) = records.saldo_rows(load("25_saldo_v2_single_row.response.xml"), version=2)
    assert row.accno == "1090" and row.amount == Decimal("2722.06")


def test_26_saldo_v1_columns() -> None:
    rows = records.saldo_rows(load("26_saldo_v1.response.json"), version=1)
    assert [(r.accno, r.name, r.amount) for r in rows][1] == ("1090", "Transferkonto", Decimal("2722.06"))


@pytest.mark.parametrize(("name", "count"), [("27_charts.response.xml", 4), ("28_charts.response.json", 2)])
def test_27_28_charts_attributes(name: str, count: int) -> None:
    charts = records.decode_list(load(name), "chart", records.Chart)
    assert len(charts) == count
    assert charts[0].accno == "1090" and charts[0].link == ("AR_paid", "AP_paid") and charts[0].allow_gl is True
    assert charts[1].allow_gl is False


def test_29_account_transactions() -> None:
    tree = load("29_account_transactions.response.xml")
    assert tree["@number_of_transaction"] == "2"
    lines = records.account_transactions(tree)
    assert [(t.date, t.amount, t.reference) for t in lines] == [
        (_dt.date(2024, 3, 15), Decimal("1749.16"), "240119"),  # wire -1749.16: SQL-Ledger's debit < 0 flipped
        (_dt.date(2024, 3, 28), Decimal("972.90"), "240118"),  # wire -972.9: in whole cents
    ]
    assert str(lines[1].amount) == "972.90" and lines[1].raw["amount"] == "-972.9"


def test_30_belege_multipart_field_names() -> None:
    text = (EXAMPLES / "30_belege_upload.request.http").read_text()
    assert f'name="{wire.BELEG_FILE_FIELD}"; filename=' in text
    assert f'name="{wire.BELEG_COMMENT_FIELD}"' in text


def test_31_belege_response() -> None:
    beleg = records.Beleg.from_tree(load("31_belege_upload.response.xml"))
    assert beleg.id == "88213"
    assert beleg.checksum == "2746515311"
    assert beleg.date_received == _dt.date(2024, 3, 21)
    assert beleg.file_name == "re_buerobedarf_2024-03.pdf"


def test_32_error_body() -> None:
    assert wire.error_message(load("32_error_bad_request.response.json")) == (
        "Die Rechnungsnummer 240117 existiert bereits."
    )


def test_33_payable_create() -> None:
    tree = load("33_payable_create.request.json")
    payable = records.Payable.from_tree(tree)
    assert payable.vendor.number == "L-66"
    assert payable.lines[0].account == "6500"
    assert payable.lines[0].unit_price == Decimal("259.4")
    produced = wire.render_json(payable.to_tree())
    assert isinstance(produced["parts"]["part"], dict)
    same_structure(produced, tree)


def test_34_departments() -> None:
    departments = records.decode_list(load("34_departments.response.json"), "department", records.Department)
    assert [(d.id, d.name) for d in departments] == [("10319", "Entwicklung"), ("10320", "Beratung")]


def test_35_projects_single_object() -> None:
    (project,) = records.decode_list(load("35_projects_single.response.json"), "project", records.Project)
    assert (project.id, project.number, project.description) == ("10401", "PRJ-88", "Umbau Talstation")


def test_every_example_file_has_a_test() -> None:
    source = Path(__file__).read_text()
    for path in EXAMPLES.iterdir():
        number = path.name[:2]
        assert f"test_{number}" in source or f"_{number}_" in source, path.name


def test_malformed_and_entity_xml_are_response_errors() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><invoices>&b;</invoices>'
    with pytest.raises(ResponseError):
        wire.parse_xml(bomb)
    external = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(ResponseError):
        wire.parse_xml(external)
    with pytest.raises(ResponseError):
        wire.parse_xml(b"<invoices><invoice>")
    with pytest.raises(ResponseError):
        wire.parse_json(b'{"invoice": ')
    with pytest.raises(ResponseError):
        wire.decode_invoice({"invnumber": "1", "transdate": "yesterday-ish", "customernumber": "K"})
