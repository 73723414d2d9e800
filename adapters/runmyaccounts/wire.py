"""Run my Accounts wire format: pure encode/decode of the XML and "mapped" JSON notation (no I/O).

The JSON of Run my Accounts is derived from its XML (Jersey "mapped" convention):

* no root key; every scalar is a string (``"5.0"``, ``"false"``, ``"10199"``);
* lists are ``{"<wrapper>": {"<item>": X}}`` where X is an object for one item and an array for several;
  top-level lists drop the plural wrapper (``{"invoice": X}``);
* empty elements are ``""``; an empty list arrives as ``null``, ``{}``, ``{"invoice": []}``, ``""``, a missing key
  or an empty body; XML attributes are ``"@name"`` keys.

Both formats are parsed into the same *tree* (dicts, lists and strings, root dropped); the decoders below read
trees. Encoders build trees in which list-valued children are Python lists; `render_json` and `render_xml`
turn a tree into the wire text (one item -> object in JSON, as the docs show).

Money is `Decimal` (never float); dates are Swiss local calendar dates: ``2012-08-06T00:00:00+02:00`` is the 6th
of August whatever that instant is in UTC.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from accounting_bridge import jsoncodec
from accounting_bridge.errors import FieldError, ResponseError, ValidationError
from accounting_bridge.models import (
    Address,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentKind,
    TaxLine,
    from_backend,
)
from accounting_bridge.money import at_scale, at_scale_or_none

BACKEND = "runmyaccounts"

__all__ = [
    "CENT",
    "as_list",
    "decode_body",
    "decode_customer",
    "decode_invoice",
    "decode_payment",
    "encode_customer",
    "encode_invoice",
    "encode_payment",
    "error_message",
    "finer_than_cents",
    "format_date",
    "format_decimal",
    "income_amount",
    "invoice_differences",
    "items",
    "parse_date",
    "parse_decimal",
    "parse_json",
    "parse_xml",
    "parse_xml_document",
    "read_answer",
    "render_json",
    "render_xml",
]

Tree = Any  # dict[str, Tree] | list[Tree] | str | None


def _bad(message: str) -> ResponseError:
    return ResponseError(message, backend=BACKEND)


# --- scalars ---------------------------------------------------------------------------------------------------


def format_decimal(value: Decimal | int) -> str:
    """Java ``Double.toString`` style, exact: ``Decimal("99.00")`` -> ``"99.0"``, ``Decimal("12.50")`` -> ``"12.5"``.

    Plain notation (never an exponent), trailing zeros removed but at least one fractional digit.
    """
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"cannot format {number}")
    if number == 0:
        return "0.0"
    text = format(number.normalize(), "f")
    if "." not in text:
        text += ".0"
    return text


def parse_decimal(value: Any, field: str = "amount") -> Decimal:
    """A wire number (string, or a JSON number from a lenient peer) as Decimal; `ResponseError` otherwise."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise _bad(f"{field}: expected a number, got {type(value).__name__}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _bad(f"{field}: not a number: {value[:40]!r}") from None
        if result.is_finite():
            return result
    raise _bad(f"{field}: not a number: {str(value)[:40]!r}")


def _opt_decimal(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return parse_decimal(value, field)


_DATE_START = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:$|[T ])")


def parse_date(value: Any, field: str = "date") -> _dt.date | None:
    """The *local* calendar date of a wire date or timestamp; ``""`` -> None.

    ``2024-03-04T00:00:00+01:00`` is 2024-03-04 (in UTC it would be the 3rd: never convert first).
    """
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if not isinstance(value, str):
        raise _bad(f"{field}: expected a date, got {type(value).__name__}")
    match = _DATE_START.match(value.strip())
    if match is None:
        raise _bad(f"{field}: not a date: {value[:40]!r}")
    try:
        return _dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _bad(f"{field}: not a date: {value[:40]!r}") from None


def _last_sunday(year: int, month: int) -> _dt.date:
    day = _dt.date(year, month + 1, 1) - _dt.timedelta(days=1)
    return day - _dt.timedelta(days=(day.weekday() + 1) % 7)


def zurich_offset(day: _dt.date) -> str:
    """UTC offset of Europe/Zurich at local midnight of `day` (EU rule: summer time from the last Sunday of
    March 02:00 to the last Sunday of October 03:00, so midnight of the switch-over Sundays is still the old one)."""
    summer = _last_sunday(day.year, 3) < day <= _last_sunday(day.year, 10)
    return "+02:00" if summer else "+01:00"


def format_date(day: _dt.date) -> str:
    """Local Swiss midnight, as the server emits it: ``2024-03-04T00:00:00+01:00``."""
    return f"{day.isoformat()}T00:00:00{zurich_offset(day)}"


def format_query_date(day: _dt.date) -> str:
    return day.isoformat()


def format_bool(value: bool) -> str:
    return "true" if value else "false"


def parse_bool(value: Any, field: str = "flag") -> bool:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _bad(f"{field}: not a boolean: {str(value)[:20]!r}")


def parse_int(value: Any, field: str = "number") -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise _bad(f"{field}: not a whole number: {str(value)[:20]!r}") from None


def text(value: Any) -> str | None:
    """A wire text field: ``""``/missing -> None, numbers (lenient peers) -> their text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool):
        return format_bool(value)
    raise _bad(f"expected text, got {type(value).__name__}")


# --- lists -----------------------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """Normalise a mapped-notation list value: missing/``null``/``""``/``{}`` -> [], object -> [object]."""
    if value is None or value == "" or value == {}:
        return []
    if isinstance(value, list):
        return [v for v in value if v is not None and v != ""]
    return [value]


def items(tree: Tree, item: str) -> list[Any]:
    """The items of a top-level list response (``{"invoice": X}``) in every empty form."""
    if tree is None or tree == "" or tree == {} or tree == []:
        return []
    if isinstance(tree, list):  # a lenient peer sending a bare array
        return as_list(tree)
    if not isinstance(tree, Mapping):
        raise _bad(f"expected a list of {item}, got {type(tree).__name__}")
    if item not in tree and any(not str(key).startswith("@") for key in tree):
        # Not one of the empty forms: another document (a proxy's XHTML page, another resource) must not read as [].
        raise _bad(f"expected a list of {item}, got an object without {item!r}")
    return as_list(tree.get(item))


def nested(tree: Mapping[str, Any], wrapper: str, item: str) -> list[Any]:
    """A nested list such as ``parts/part``; also accepts the (wrong) array-of-wrappers form."""
    value = tree.get(wrapper)
    if isinstance(value, list):  # [{"part": {...}}, ...]
        out: list[Any] = []
        for entry in value:
            if isinstance(entry, Mapping) and item in entry:
                out.extend(as_list(entry[item]))
            elif entry not in (None, ""):
                out.append(entry)
        return out
    if value is None or value == "":
        return []
    if not isinstance(value, Mapping):
        raise _bad(f"{wrapper}: expected a list of {item}")
    return as_list(value.get(item))


# --- parsing ---------------------------------------------------------------------------------------------------


def parse_json(body: bytes | str) -> Tree:
    """Mapped JSON -> tree. An empty body is an empty list (one of the documented empty forms)."""
    raw = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if not raw.strip():
        return None
    try:
        return jsoncodec.loads(raw)
    except ValueError as exc:
        raise _bad(f"response body is not valid JSON ({exc.__class__.__name__})") from None


def parse_xml(body: bytes | str) -> Tree:
    """XML -> the same tree as the JSON (root dropped, attributes as ``@name``, empty elements ``""``).

    Entity declarations are refused (xmltodict's default, kept): a billion-laughs or external-entity document
    is a `ResponseError`, as is malformed XML. An empty root (``<invoices/>``) is None (an empty list).
    """
    return parse_xml_document(body)[1]


def _empty_as_text(_path: Any, key: str, value: Any) -> tuple[str, Any]:
    """xmltodict postprocessor: an empty element is ``""`` (as in the JSON), filled in while parsing."""
    return key, "" if value is None else value


def parse_xml_document(body: bytes | str) -> tuple[str | None, Tree]:
    """`parse_xml`, also naming the root element (one parse serves both the error check and the answer)."""
    raw = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if not raw.strip():
        return None, None
    try:
        parsed = xmltodict.parse(raw, attr_prefix="@", cdata_key="#text", postprocessor=_empty_as_text)
    except ExpatError as exc:
        raise _bad(f"response body is not well-formed XML ({exc.__class__.__name__})") from None
    except ValueError as exc:  # "entities are disabled"
        raise _bad(f"XML refused: {exc}") from None
    if not isinstance(parsed, Mapping) or len(parsed) != 1:
        raise _bad("XML document without a single root element")
    ((root, root_value),) = parsed.items()
    if root_value is None or root_value == "":
        return root, None
    return root, root_value


def parse_xml_root(body: bytes | str) -> str | None:
    """The root element name of an XML document (for the sandbox and error bodies)."""
    raw = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    match = re.search(r"<([A-Za-z_][\w.\-]*)[\s/>]", re.sub(r"<\?.*?\?>|<!--.*?-->", "", raw, flags=re.S))
    return match[1] if match else None


def decode_body(body: bytes, content_type: str = "") -> Tree:
    """Parse a response by its content type (sniffing when none is given)."""
    kind = content_type.lower()
    if "json" in kind:
        return parse_json(body)
    if "xml" in kind:
        return parse_xml(body)
    if kind and body.strip():
        # e.g. text/html with 200: a proxy's or maintenance page, never an answer of the API
        raise _bad(f"response body is {kind}, not JSON or XML")
    stripped = body.lstrip()
    if stripped.startswith(b"<"):
        return parse_xml(body)
    return parse_json(body)


def read_answer(body: bytes, content_type: str = "") -> tuple[Tree, str | None]:
    """A response parsed once: its tree (as `decode_body`) and its error message (as `error_text`). A body that
    cannot be decoded raises `ResponseError`, unless it still carries an error message: then the tree is None."""
    try:
        tree, root = _decode_with_root(body, content_type)
    except ResponseError:
        message = error_text(body, content_type)
        if message is None:
            raise
        return None, message
    if root is None:
        return tree, error_message(tree)
    if root != "error":
        return tree, None
    return tree, tree if isinstance(tree, str) and tree else error_message({"error": tree})


def _decode_with_root(body: bytes, content_type: str) -> tuple[Tree, str | None]:
    """`decode_body`, plus the XML root element's name (None for JSON, which has no root)."""
    kind = content_type.lower()
    if "json" not in kind and ("xml" in kind or (not kind and body.lstrip().startswith(b"<"))):
        if not body.lstrip().startswith(b"<"):
            return decode_body(body, content_type), None  # not XML at all: as decode_body does, never an error
        root, tree = parse_xml_document(body)
        return tree, root
    return decode_body(body, content_type), None


def error_message(tree: Tree) -> str | None:
    """The ``{"error": "..."}`` message of a body (also sent with 2xx), or None."""
    if isinstance(tree, Mapping):
        value = tree.get("error")
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping):  # <error><message>..</message></error>
            for key in ("message", "#text"):
                inner = value.get(key)
                if isinstance(inner, str) and inner:
                    return inner
    if isinstance(tree, str) and tree:  # XML <error>text</error> parses to its text
        return None
    return None


# --- rendering -------------------------------------------------------------------------------------------------


def _jsonify(value: Tree, single_as_object: bool) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, child in value.items():
            if isinstance(child, list):
                kept = [_jsonify(v, single_as_object) for v in child]
                if not kept:
                    continue  # an empty list is simply absent inside an entity
                out[key] = kept[0] if single_as_object and len(kept) == 1 else kept
            else:
                out[key] = _jsonify(child, single_as_object)
        return out
    if value is None:
        return ""
    return value


def render_json(tree: Tree, *, single_as_object: bool = True) -> Any:
    """The mapped JSON *value* of a tree (lists of one -> object unless `single_as_object` is False)."""
    return _jsonify(tree, single_as_object)


def json_bytes(tree: Tree, *, single_as_object: bool = True) -> bytes:
    return jsoncodec.dumps(render_json(tree, single_as_object=single_as_object)).encode("utf-8")


def render_xml(root: str, tree: Tree) -> bytes:
    """XML text of a tree under `root` (lists become repeated elements)."""

    def clean(value: Tree) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if not (isinstance(v, list) and not v)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if value is None or value == "":
            return None
        return value

    document = xmltodict.unparse({root: clean(tree) if tree not in (None, "") else None}, encoding="UTF-8")
    return str(document).encode("utf-8")


# --- customers -------------------------------------------------------------------------------------------------


def _s(value: str | None) -> str:
    return value if value is not None else ""


def encode_customer(customer: Customer) -> dict[str, Any]:
    """A complete customer record (RMA overwrites a known customer with what is sent: unset fields go as "")."""
    first, last = _split_name(customer.contact_name)
    address = customer.address or Address()
    tree: dict[str, Any] = {
        "customernumber": customer.number,
        "name": customer.name,
        "firstname": first,
        "lastname": last,
        "address1": _s(address.street),
        "address2": _s(address.street2),
        "zipcode": _s(address.postcode),
        "city": _s(address.city),
        "state": _s(address.region),
        "country": _s(address.country),
        "phone": _s(customer.phone),
        "email": _s(customer.email),
        "taxnumber": _s(customer.vat_number),
        "bank_iban": _s(customer.iban),
        "bank_bic": _s(customer.bic),
        "language_code": _s(customer.language),
        "typeofcontact": customer.kind.value,
    }
    if customer.payment_terms_days is not None:
        tree["terms"] = str(customer.payment_terms_days)
    return tree


def _split_name(name: str | None) -> tuple[str, str]:
    if not name:
        return "", ""
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


@from_backend
def decode_customer(tree: Mapping[str, Any]) -> Customer:
    if not isinstance(tree, Mapping):
        raise _bad("customer: expected an object")
    number = text(tree.get("customernumber"))
    if not number:
        raise _bad("customer without customernumber")
    first, last = text(tree.get("firstname")), text(tree.get("lastname"))
    contact = " ".join(p for p in (first, last) if p) or None
    # An empty name comes back as an empty element: fall back to the contact person (as other clients do).
    name = text(tree.get("name")) or contact or number
    kind = CustomerKind.PERSON if text(tree.get("typeofcontact")) == "person" else CustomerKind.COMPANY
    address_fields = {
        "street": text(tree.get("address1")),
        "street2": text(tree.get("address2")),
        "postcode": text(tree.get("zipcode")),
        "city": text(tree.get("city")),
        "region": text(tree.get("state")),
        "country": text(tree.get("country")),
    }
    email = text(tree.get("email"))
    try:
        return Customer(
            number=number,
            name=name,
            kind=kind,
            email=email if email and "@" in email else None,
            phone=text(tree.get("phone")),
            address=Address(**address_fields) if any(address_fields.values()) else None,
            language=text(tree.get("language_code")),
            vat_number=text(tree.get("taxnumber")),
            payment_terms_days=parse_int(tree.get("terms"), "terms"),
            iban=text(tree.get("bank_iban")),
            bic=text(tree.get("bank_bic")),
            contact_name=contact,
            id=text(tree.get("id")),
            raw=tree,  # the model keeps a read-only copy
        )
    except ValidationError as exc:
        raise _bad(f"customer {number!r} cannot be decoded: {exc.message}") from None


# --- invoices --------------------------------------------------------------------------------------------------

#: Neutral status -> RMA `status` query value (OPEN also returns OVERDUE; the adapter filters exactly).
STATUS_QUERY = {
    InvoiceStatus.OPEN: "OPEN",
    InvoiceStatus.PARTIALLY_PAID: "OPEN",
    InvoiceStatus.OVERDUE: "OVERDUE",
    InvoiceStatus.PAID: "PAID",
}


def invoice_shape(invoice: Invoice) -> str:
    """ "parts" when the lines name parts (Artikel variant), else "transaction" (income + tax entries)."""
    return "parts" if any(line.item_number for line in invoice.lines) else "transaction"


# --- money: the rounding rule ------------------------------------------------------------------------------------
#
# Run my Accounts books whole cents. Amounts the adapter *computes* are rounded: the income entry of a
# "customer transaction" line is quantity × unit_price less the line discount, rounded to cents per line with
# ROUND_HALF_UP (29.925 -> 29.93, -0.125 -> -0.13), so the invoice total is the sum of the rounded lines plus the
# tax lines. Amounts the caller *states* (tax lines, payments, GL posting lines) are never rounded: finer than a
# cent they are refused by `validate()` with the field path, before any I/O. (Part lines send quantity and price;
# RMA computes those itself.)

#: One cent: the precision of every amount Run my Accounts books.
CENT = Decimal("0.01")
FINER_THAN_CENTS = "has more than two decimals; Run my Accounts books whole cents: round it before sending"




def income_amount(line: InvoiceLine) -> Decimal:
    """The income entry of a "customer transaction" line: its net amount rounded to cents, half up, per line."""
    return line.net_amount.quantize(CENT, ROUND_HALF_UP)


def finer_than_cents(value: Decimal) -> bool:
    """True when `value` needs more than two decimals (``10.500`` does not: trailing zeros are no precision)."""
    if not value.is_finite():
        return False
    exponent = value.normalize().as_tuple().exponent
    return isinstance(exponent, int) and exponent < -2


def check_invoice(invoice: Invoice) -> list[FieldError]:
    """What RMA needs beyond the neutral rules (no I/O)."""
    errors: list[FieldError] = []
    shape = invoice_shape(invoice)
    for index, line in enumerate(invoice.lines):
        if shape == "parts" and not line.item_number:
            errors.append(
                FieldError(f"lines[{index}].item_number", "every line needs a part number once one line has one")
            )
        if shape == "transaction" and not line.account:
            errors.append(FieldError(f"lines[{index}].account", "an income account is required without parts"))
        if line.unit is not None and len(line.unit) > 5:
            errors.append(FieldError(f"lines[{index}].unit", "at most 5 characters"))
        if shape == "transaction" and line.tax_rate and not invoice.tax_lines:
            errors.append(
                FieldError(
                    f"lines[{index}].tax_rate",
                    "Run my Accounts does not compute VAT for booked lines: pass tax_lines (VAT account + amount)",
                )
            )
    for index, tax in enumerate(invoice.tax_lines):
        if finer_than_cents(tax.amount):
            errors.append(FieldError(f"tax_lines[{index}].amount", FINER_THAN_CENTS))
    if shape == "parts" and invoice.tax_lines:
        errors.append(FieldError("tax_lines", "VAT of part lines comes from the part master; leave tax_lines empty"))
    if invoice.currency is not None and len(invoice.currency) != 3:
        errors.append(FieldError("currency", "must be a three-letter code"))
    if invoice.due_date is None:
        errors.append(FieldError("due_date", "is required by Run my Accounts"))
    if invoice.customer is not None and len(invoice.customer.number) > 32:
        errors.append(FieldError("customer.number", "at most 32 characters"))
    return errors


def _sign(invoice: Invoice) -> Decimal:
    """Credit notes stated with positive amounts are booked negative (RMA has one entity for both)."""
    if invoice.kind is InvoiceKind.CREDIT_NOTE:
        gross = invoice.lines_net_total + sum((t.amount for t in invoice.tax_lines), Decimal(0))
        if gross > 0:
            return Decimal(-1)
    return Decimal(1)


def encode_invoice(
    invoice: Invoice, *, ar_accno: str = "1100", extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An invoice/credit note tree in the shape its lines call for (parts, or income + tax entries).

    Income entries are each line's net amount rounded to cents with ROUND_HALF_UP, per line (`income_amount`):
    the invoice total is the sum of the rounded lines plus the tax lines.
    """
    sign = _sign(invoice)
    tree: dict[str, Any] = {
        "invnumber": invoice.number,
        "ordnumber": _s(invoice.order_number),
        "status": "OPEN",
        "currency": invoice.currency or "CHF",
        "ar_accno": ar_accno,
        "transdate": format_date(invoice.issue_date),
        "duedate": format_date(invoice.due_date or invoice.issue_date),
        "description": _s(invoice.title),
        "notes": _s(invoice.notes),
        "intnotes": _s(invoice.internal_notes),
        "taxincluded": format_bool(invoice.prices_include_tax),
        "dcn": _s(invoice.payment_reference),
    }
    if invoice.customer is not None:
        tree["customer"] = encode_customer(invoice.customer)
    else:
        tree["customernumber"] = invoice.customer_key
    if invoice_shape(invoice) == "parts":
        parts = []
        for line in invoice.lines:
            part: dict[str, Any] = {
                "partnumber": line.item_number,
                "description": line.description,
                "unit": _s(line.unit),
                "quantity": format_decimal(line.quantity * sign),
                "sellprice": format_decimal(line.unit_price),
                "discount": format_decimal(line.discount_percent or Decimal(0)),
                "itemnote": _s(line.note),
            }
            if line.account:
                part["income_accno"] = line.account
            parts.append(part)
        tree["parts"] = {"part": parts}
    else:
        tree["incomeentries"] = {
            "incomeentry": [
                {
                    "amount": format_decimal(income_amount(line) * sign),
                    "income_accno": line.account,
                    "description": line.description,
                }
                for line in invoice.lines
            ]
        }
        if invoice.tax_lines:
            tree["taxentries"] = {
                "taxentry": [
                    {"amount": format_decimal(t.amount * sign), "tax_accno": t.account} for t in invoice.tax_lines
                ]
            }
    tree.update(extra or {})
    return tree


def _line_from_part(part: Mapping[str, Any], index: int, currency: str | None = None) -> InvoiceLine:
    number = text(part.get("partnumber"))
    account = text(part.get("income_accno"))
    discount = _opt_decimal(part.get("discount"), f"parts[{index}].discount")
    return InvoiceLine(
        description=text(part.get("description")) or number or "-",
        unit_price=at_scale(parse_decimal(part.get("sellprice", "0"), f"parts[{index}].sellprice"), currency),
        quantity=parse_decimal(part.get("quantity", "1"), f"parts[{index}].quantity"),
        item_number=number,
        account=account if account not in (None, "0") else None,
        discount_percent=discount if discount else None,
        unit=text(part.get("unit")),
        note=text(part.get("itemnote")),
    )


@from_backend
def decode_invoice(tree: Mapping[str, Any], *, today: _dt.date | None = None) -> Invoice:
    """An invoice tree (either shape) as a neutral `Invoice`; the payload is kept in `raw`."""
    if not isinstance(tree, Mapping):
        raise _bad("invoice: expected an object")
    number = text(tree.get("invnumber"))
    if not number:
        raise _bad("invoice without invnumber")
    issue = parse_date(tree.get("transdate"), "transdate")
    if issue is None:
        raise _bad(f"invoice {number!r} without transdate")
    due = parse_date(tree.get("duedate"), "duedate")
    currency = text(tree.get("currency"))
    lines: list[InvoiceLine] = []
    for index, part in enumerate(nested(tree, "parts", "part")):
        lines.append(_line_from_part(part, index, currency))
    for index, entry in enumerate(nested(tree, "incomeentries", "incomeentry")):
        account = text(entry.get("income_accno"))
        amount = parse_decimal(entry.get("amount"), f"incomeentries[{index}].amount")
        lines.append(
            InvoiceLine(
                description=text(entry.get("description")) or f"Konto {account}",
                unit_price=at_scale(amount, currency),
                account=account,
            )
        )
    tax_lines = [
        TaxLine(
            account=text(e.get("tax_accno")) or "",
            amount=at_scale(parse_decimal(e.get("amount"), "taxentry.amount"), currency),
        )
        for e in nested(tree, "taxentries", "taxentry")
    ]
    total = at_scale_or_none(_opt_decimal(tree.get("amount"), "amount"), currency)
    net = at_scale_or_none(_opt_decimal(tree.get("netamount"), "netamount"), currency)
    paid = at_scale_or_none(_opt_decimal(tree.get("paid"), "paid"), currency)
    if not lines:
        # List responses may omit the positions: one summary line keeps the model valid; `raw` has the rest.
        lines.append(
            InvoiceLine(
                description=text(tree.get("description")) or "(positions not included in this response)",
                unit_price=net if net is not None else (total or Decimal(0)),
                note="summary line: the backend returned no positions",
            )
        )
    customer_tree = tree.get("customer")
    customer = None
    customer_number = text(tree.get("customernumber"))
    if isinstance(customer_tree, Mapping) and customer_tree:
        customer = decode_customer(customer_tree)
        customer_number = customer.number
    if customer_number is None:
        raise _bad(f"invoice {number!r} without customer")
    gross_sign = total if total is not None else sum((ln.net_amount for ln in lines), Decimal(0))
    status = _status(text(tree.get("status")), total, paid, due, today)
    try:
        return Invoice(
            number=number,
            issue_date=issue,
            due_date=due if due is None or due >= issue else issue,
            customer_number=customer_number,
            customer=customer,
            currency=currency,
            lines=lines,
            tax_lines=tax_lines,
            kind=InvoiceKind.CREDIT_NOTE if gross_sign < 0 else InvoiceKind.INVOICE,
            prices_include_tax=parse_bool(tree.get("taxincluded"), "taxincluded"),
            title=text(tree.get("description")),
            notes=text(tree.get("notes")),
            internal_notes=text(tree.get("intnotes")),
            order_number=text(tree.get("ordnumber")),
            payment_reference=text(tree.get("dcn")),
            status=status,
            total=total,
            net_total=net,
            tax_total=(total - net) if total is not None and net is not None else None,
            paid_amount=paid,
            id=text(tree.get("id")),
            raw=tree,  # the model keeps a read-only copy
        )
    except ValidationError as exc:
        raise _bad(f"invoice {number!r} cannot be decoded: {exc.message}") from None


def _status(
    wire: str | None, total: Decimal | None, paid: Decimal | None, due: _dt.date | None, today: _dt.date | None
) -> InvoiceStatus | None:
    if wire == "PAID":
        return InvoiceStatus.PAID
    if wire == "OVERDUE":
        return InvoiceStatus.OVERDUE
    if wire == "OPEN":
        if paid and total and abs(paid) < abs(total):
            return InvoiceStatus.PARTIALLY_PAID
        return InvoiceStatus.OPEN
    return None


def _norm_amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value)).normalize() if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def comparable_text(value: Any) -> str | None:
    """A text as the wire may hand it back, for comparing what was sent with what is stored: line ends as
    ``\\n`` and no whitespace at either end (XML parsing turns ``\\r\\n`` and ``\\r`` into ``\\n``, and xmltodict
    strips element texts with `str.strip`); empty -> None."""
    raw = text(value)
    if raw is None:
        return None
    return raw.replace("\r\n", "\n").replace("\r", "\n").strip() or None


def _text_differs(key: str, sent: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """A text the caller gave (not empty once normalised) that the stored one does not carry."""
    mine = comparable_text(sent.get(key))
    return mine is not None and mine != comparable_text(stored.get(key))


#: Header texts compared only when the caller gave them (the backend may fill an empty one, e.g. ``dcn``).
_INVOICE_TEXTS = ("ordnumber", "description", "notes", "intnotes", "dcn")
_PART_TEXTS = ("partnumber", "description", "unit", "itemnote", "income_accno")
_PART_AMOUNTS = ("quantity", "sellprice", "discount")


def _invoice_customer(tree: Mapping[str, Any]) -> str | None:
    customer = tree.get("customer")
    embedded = comparable_text(customer.get("customernumber")) if isinstance(customer, Mapping) and customer else None
    return embedded or comparable_text(tree.get("customernumber"))


def _entries(tree: Mapping[str, Any], wrapper: str, item: str, account: str) -> list[tuple[str, Decimal, str]]:
    """Income or tax entries as (account, amount, description), sorted: their order carries no meaning."""
    return sorted(
        (
            comparable_text(e.get(account)) or "",
            _norm_amount(e.get("amount")),
            comparable_text(e.get("description")) or "",
        )
        for e in nested(tree, wrapper, item)
    )


def _entries_differ(sent: list[tuple[str, Decimal, str]], stored: list[tuple[str, Decimal, str]]) -> bool:
    if len(sent) != len(stored):
        return True
    return any(a[:2] != b[:2] or (a[2] and a[2] != b[2]) for a, b in zip(sent, stored, strict=True))


def _part_differences(index: int, sent: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    names = [k for k in _PART_TEXTS if _text_differs(k, sent, stored)]
    names += [k for k in _PART_AMOUNTS if _norm_amount(sent.get(k, "1" if k == "quantity" else None))
              != _norm_amount(stored.get(k, "1" if k == "quantity" else None))]  # fmt: skip
    return [f"parts[{index}].{name}" for name in names]


def invoice_differences(sent: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """The fields of the invoice tree a caller `sent` that differ in the `stored` one (idempotent create: the
    same number with any difference is another invoice). Everything the caller sent that Run my Accounts stores
    is compared — customer, dates, currency, VAT mode, title, notes, order number, payment reference, and every
    position or income/tax entry with its description, quantity, price, discount, unit, note and account — except
    texts the caller left empty (the backend may fill them). Texts compare as `comparable_text` (line ends and
    surrounding whitespace do not survive the wire), numbers by value, dates by local date; `extra` fields are not
    compared (the backend does not echo them all)."""
    differences = [
        name
        for name, read in (
            ("customernumber", _invoice_customer),
            ("transdate", lambda t: parse_date(t.get("transdate"))),
            ("duedate", lambda t: parse_date(t.get("duedate"))),
            ("currency", lambda t: comparable_text(t.get("currency")) or "CHF"),
            ("taxincluded", lambda t: parse_bool(t.get("taxincluded"))),
        )
        if read(sent) != read(stored)
    ]
    differences += [k for k in _INVOICE_TEXTS if _text_differs(k, sent, stored)]
    sent_parts, stored_parts = nested(sent, "parts", "part"), nested(stored, "parts", "part")
    if len(sent_parts) != len(stored_parts):
        differences.append("parts")
    else:
        for index, (mine, theirs) in enumerate(zip(sent_parts, stored_parts, strict=True)):
            differences += _part_differences(index, mine, theirs)
    for wrapper, item, account in (("incomeentries", "incomeentry", "income_accno"),
                                   ("taxentries", "taxentry", "tax_accno")):  # fmt: skip
        if _entries_differ(_entries(sent, wrapper, item, account), _entries(stored, wrapper, item, account)):
            differences.append(wrapper)
    return differences


# --- payments --------------------------------------------------------------------------------------------------

DEFAULT_MEMO = {
    PaymentKind.PAYMENT: "Zahlung",
    PaymentKind.DISCOUNT: "Rabatt",
    PaymentKind.CASH_DISCOUNT: "Skonto",
    PaymentKind.BANK_FEE: "Bankspesen",
    PaymentKind.WRITE_OFF: "Ausbuchung",
    PaymentKind.ROUNDING: "Rundung",
}


def encode_payment(payment: Payment, *, account: str) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "datepaid": format_date(payment.date),
        "amount_paid": format_decimal(payment.amount),
        "source": _s(payment.reference),
        "memo": payment.memo if payment.memo is not None else DEFAULT_MEMO[payment.kind],
        "payment_accno": account,
    }
    if payment.currency:
        tree["currency"] = payment.currency
    return tree


@from_backend
def decode_payment(
    tree: Mapping[str, Any],
    *,
    invoice_number: str | None = None,
    kinds: Mapping[str, PaymentKind] | None = None,
) -> Payment:
    """A payment tree; `kinds` maps configured deduction accounts to their `PaymentKind`."""
    if not isinstance(tree, Mapping):
        raise _bad("payment: expected an object")
    number = text(tree.get("invnumber")) or invoice_number
    if not number:
        raise _bad("payment without invnumber")
    date = parse_date(tree.get("datepaid"), "datepaid")
    if date is None:
        raise _bad("payment without datepaid")
    account = text(tree.get("payment_accno"))
    currency = text(tree.get("currency"))
    try:
        return Payment(
            invoice_number=number,
            date=date,
            amount=at_scale(parse_decimal(tree.get("amount_paid"), "amount_paid"), currency),
            account=account,
            kind=(kinds or {}).get(account or "", PaymentKind.PAYMENT),
            currency=currency,
            reference=text(tree.get("source")),
            memo=text(tree.get("memo")),
            id=text(tree.get("id")),
            raw=tree,  # the model keeps a read-only copy
        )
    except ValidationError as exc:
        raise _bad(f"payment cannot be decoded: {exc.message}") from None


def processed_form(ids: Iterable[str]) -> str:
    """``id=1&id=2`` (the field is repeated, form-encoded)."""
    from urllib.parse import urlencode

    return urlencode([("id", str(i)) for i in ids])


def strip_empty(tree: Tree, drop: Sequence[str] = ()) -> Tree:
    """A tree without empty leaves and without the `drop` keys (used to compare payloads structurally)."""
    if isinstance(tree, Mapping):
        return {k: strip_empty(v, drop) for k, v in tree.items() if k not in drop and v not in ("", None, {}, [])}
    if isinstance(tree, list):
        return [strip_empty(v, drop) for v in tree]
    return tree


#: Multipart field names of `POST /belege` (documented).
BELEG_FILE_FIELD = "Filedata"
BELEG_COMMENT_FIELD = "comment"
#: Content types `/belege` accepts (documented) and its size limit (25 MB).
BELEG_TYPES = frozenset({"application/pdf", "image/png", "image/jpg", "image/jpeg", "image/gif"})
BELEG_MAX_BYTES = 25 * 1024 * 1024


def error_text(body: bytes, content_type: str = "") -> str | None:
    """The error message of a response body in either format (``{"error": ..}`` or ``<error>..</error>``)."""
    if not body.strip():
        return None
    try:
        if "json" in content_type.lower() or not body.lstrip().startswith(b"<"):
            return error_message(parse_json(body))
        if parse_xml_root(body) == "error":
            tree = parse_xml(body)
            return tree if isinstance(tree, str) and tree else error_message({"error": tree})
    except ResponseError:
        return None
    return None
