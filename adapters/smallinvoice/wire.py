"""Pure encode/decode between the neutral models and smallinvoice API v2 payloads (no I/O).

Money is Decimal in and out (the JSON codec reads numbers as Decimal and writes Decimals from their digits).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

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
    from_backend,
)
from accounting_bridge.money import at_scale, at_scale_or_none
from accounting_bridge.transport.http import ErrorInfo, Response

from . import constants as c

__all__ = [
    "PAYMENT_KIND_BY_TYPE",
    "PAYMENT_TYPE_BY_KIND",
    "changed_fields",
    "decode_contact",
    "decode_invoice",
    "decode_payment",
    "encode_address",
    "encode_contact",
    "encode_invoice",
    "encode_payment",
    "error_info",
    "invoice_issues",
    "item_of",
    "items_of",
    "neutral_status",
    "payment_issues",
    "status_filter",
]

BACKEND = "smallinvoice"

# --- statuses and payment kinds ----------------------------------------------------------------------------------

_STATUS: dict[str, InvoiceStatus] = {
    c.STATUS_DRAFT: InvoiceStatus.DRAFT,
    c.STATUS_SENT: InvoiceStatus.OPEN,
    c.STATUS_PAID: InvoiceStatus.PAID,
    c.STATUS_PARTIALLY_PAID: InvoiceStatus.PARTIALLY_PAID,
    c.STATUS_CANCELLED: InvoiceStatus.CANCELLED,
    c.STATUS_DELETED: InvoiceStatus.CANCELLED,
    **{code: InvoiceStatus.OVERDUE for code in c.REMINDER_STATUSES},
}

#: [3P] N normal, C cash discount, D rounding difference, W write-off.
PAYMENT_KIND_BY_TYPE: dict[str, PaymentKind] = {
    "N": PaymentKind.PAYMENT,
    "C": PaymentKind.CASH_DISCOUNT,
    "D": PaymentKind.ROUNDING,
    "W": PaymentKind.WRITE_OFF,
}
PAYMENT_TYPE_BY_KIND: dict[PaymentKind, str] = {kind: code for code, kind in PAYMENT_KIND_BY_TYPE.items()}


def neutral_status(code: Any) -> InvoiceStatus | None:
    return _STATUS.get(code) if isinstance(code, str) else None


def status_filter(status: InvoiceStatus) -> dict[str, Any]:
    """The `filter` object selecting the smallinvoice status codes of one neutral status."""
    codes = [code for code, neutral in _STATUS.items() if neutral is status]
    if len(codes) == 1:
        return {"status": codes[0]}
    return {"or": [{"status": code} for code in codes]}


# --- envelopes ---------------------------------------------------------------------------------------------------


def item_of(data: Any) -> dict[str, Any]:
    """The `item` of a `{"item": {...}}` envelope."""
    item = data.get("item") if isinstance(data, Mapping) else None
    if not isinstance(item, Mapping):
        raise ResponseError("expected a JSON object with an 'item' object", backend=BACKEND)
    return dict(item)


def items_of(data: Any) -> tuple[list[dict[str, Any]], bool]:
    """The `items` of a list envelope and whether `pagination.next` says there is another page."""
    items = data.get("items") if isinstance(data, Mapping) else None
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ResponseError("expected a JSON object with an 'items' list", backend=BACKEND)
    pagination = data.get("pagination")
    has_next = isinstance(pagination, Mapping) and bool(pagination.get("next"))
    return [dict(i) for i in items], has_next


# --- helpers -----------------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _decimal(value: Any, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ResponseError(f"{what} is not a number", backend=BACKEND)
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ResponseError(f"{what} is not a number: {value!r}", backend=BACKEND) from None


def _date(value: Any, what: str) -> _dt.date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ResponseError(f"{what} is not a date", backend=BACKEND)
    try:
        return _dt.date.fromisoformat(value[:10])  # also accepts "Y-m-d H:i:s"
    except ValueError:
        raise ResponseError(f"{what} is not a date: {value!r}", backend=BACKEND) from None


def _exact(value: Any, what: str, index: int | None = None) -> Decimal | None:
    """`_decimal` for decoders: a Decimal as it is, and the field path (``positions[i].what``) only built when
    a value is refused."""
    if value.__class__ is Decimal:
        return value
    return _decimal(value, what if index is None else f"positions[{index}].{what}")


def _decoded(build: Any, what: str) -> Any:
    try:
        return build()
    except ValidationError as exc:
        raise _does_not_fit(exc, what) from None


def _does_not_fit(exc: ValidationError, what: str) -> ResponseError:
    return ResponseError(f"the {what} sent by smallinvoice does not fit the model: {exc.message}", backend=BACKEND)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# --- contacts ----------------------------------------------------------------------------------------------------


def encode_contact(customer: Customer, *, create: bool, gender: str | None = None) -> dict[str, Any]:
    """The POST (create) or PUT body of a contact. On create the address goes into `main_address`; `ContactPUT`
    has no address (addresses are a sub-resource: `encode_address`)."""
    body: dict[str, Any] = {
        "number": customer.number,
        "type": "P" if customer.kind is CustomerKind.PERSON else "C",
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "currency": customer.currency,
        "communication_language": customer.language,
        "vat_identification": customer.vat_number,
        "payment_grace": customer.payment_terms_days,
    }
    if create:
        body["relation"] = list(c.CONTACT_RELATION)
        if customer.kind is CustomerKind.PERSON:
            body["gender"] = gender
    if create and customer.address is not None:
        body["main_address"] = encode_address(customer.address)
    return _drop_none(body)


def encode_address(address: Address) -> dict[str, Any]:
    """A contact address (`main_address` of a new contact, `PUT /contacts/{id}/addresses/{id}` later)."""
    return _drop_none(
        {
            "street": address.street,
            "street2": address.street2,
            "postcode": address.postcode,
            "city": address.city,
            "country": address.country,
        }
    )


def changed_fields(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `wanted` whose value `stored` does not already hold (compared as text, as JSON may differ)."""
    return {key: value for key, value in wanted.items() if _comparable(stored.get(key)) != _comparable(value)}


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return None if value is None else str(value)


def contact_create_issues(customer: Customer, gender: str | None) -> list[FieldError]:
    """What smallinvoice requires to create a contact that the neutral model leaves optional."""
    errors: list[FieldError] = []
    address = customer.address
    if address is None:
        errors.append(FieldError("address", "smallinvoice needs an address (street, postcode, city, country)"))
    else:
        for name in ("street", "postcode", "city", "country"):
            if not getattr(address, name):
                errors.append(FieldError(f"address.{name}", "is required by smallinvoice to create a contact"))
    if customer.kind is CustomerKind.PERSON and gender not in ("M", "F"):
        errors.append(
            FieldError("kind", "smallinvoice needs a gender (M/F) for a private contact: set the person_gender setting")
        )
    return errors


def customer_issues(customer: Customer) -> list[FieldError]:
    errors: list[FieldError] = []
    for name in ("iban", "bic", "contact_name"):
        if getattr(customer, name):
            errors.append(
                FieldError(
                    name,
                    "not part of a smallinvoice contact (bank accounts and people are sub-resources: use raw() on "
                    "/contacts/{id}/accounts or /contacts/{id}/people)",
                )
            )
    if customer.language is not None and customer.language not in c.LANGUAGES:
        errors.append(FieldError("language", f"must be one of {', '.join(c.LANGUAGES)}"))
    if customer.address is not None and customer.address.region:
        errors.append(FieldError("address.region", "smallinvoice addresses have no region"))
    return errors


@from_backend
def decode_contact(item: Mapping[str, Any]) -> Customer:
    address = item.get("main_address")
    decoded_address = None
    if isinstance(address, Mapping):
        decoded_address = Address(
            street=_join_street(address.get("street"), address.get("street_no")),
            street2=_text(address.get("street2")),
            postcode=_text(address.get("postcode")),
            city=_text(address.get("city")),
            country=_text(address.get("country")),
        )
    grace = item.get("payment_grace")
    number = _text(item.get("number")) or _text(item.get("id"))
    if number is None:
        raise ResponseError("a contact without number and id", backend=BACKEND)

    def build() -> Customer:
        return Customer(
            number=number,
            name=str(item.get("name") or ""),
            kind=CustomerKind.PERSON if item.get("type") == "P" else CustomerKind.COMPANY,
            email=_text(item.get("email")),
            phone=_text(item.get("phone")),
            address=decoded_address,
            currency=_text(item.get("currency")),
            language=_text(item.get("communication_language")),
            vat_number=_text(item.get("vat_identification")),
            payment_terms_days=int(grace) if isinstance(grace, int) and not isinstance(grace, bool) else None,
            id=_text(item.get("id")),
            raw=item,
        )

    result: Customer = _decoded(build, "contact")
    return result


def _join_street(street: Any, number: Any) -> str | None:
    parts = [str(p) for p in (street, number) if p not in (None, "")]
    return " ".join(parts) or None


# --- invoices ----------------------------------------------------------------------------------------------------


def invoice_issues(invoice: Invoice) -> list[FieldError]:
    """Neutral invoice content smallinvoice cannot represent (checked before any I/O)."""
    errors: list[FieldError] = []
    if invoice.kind is not InvoiceKind.INVOICE:
        errors.append(FieldError("kind", "smallinvoice API v2 has no credit notes"))
    if invoice.tax_lines:
        errors.append(FieldError("tax_lines", "smallinvoice computes VAT per position (use lines[].tax_rate)"))
    if invoice.order_number:
        errors.append(FieldError("order_number", "smallinvoice invoices have no order number field"))
    if invoice.payment_reference:
        errors.append(FieldError("payment_reference", "assigned by smallinvoice (ISR reference), cannot be set"))
    for index, line in enumerate(invoice.lines):
        if line.quantity <= 0:
            errors.append(FieldError(f"lines[{index}].quantity", "must be positive"))
        if line.account:
            errors.append(FieldError(f"lines[{index}].account", "smallinvoice positions have no income account"))
        if line.tax_code:
            errors.append(FieldError(f"lines[{index}].tax_code", "smallinvoice takes a VAT rate (tax_rate), no code"))
    return errors


def encode_invoice(
    invoice: Invoice,
    *,
    contact_id: int,
    contact_address_id: int,
    unit_ids: Sequence[int],
    currency: str,
    language: str,
    due: _dt.date,
) -> dict[str, Any]:
    positions = []
    for line, unit_id in zip(invoice.lines, unit_ids, strict=True):
        positions.append(
            _drop_none(
                {
                    "type": c.POSITION_TYPE,
                    "catalog_type": c.POSITION_CATALOG_TYPE,
                    "number": line.item_number,
                    "name": line.description,
                    "description": line.note,
                    "price": line.unit_price,
                    "amount": line.quantity,
                    "unit_id": unit_id,
                    "vat": line.tax_rate if line.tax_rate is not None else Decimal(0),
                    "discount_rate": line.discount_percent,
                    "discount_type": "P" if line.discount_percent is not None else None,
                }
            )
        )
    body: dict[str, Any] = {
        "number": invoice.number,
        "contact_id": contact_id,
        "contact_address_id": contact_address_id,
        "date": invoice.issue_date.isoformat(),
        "due": due.isoformat(),
        "currency": currency,
        "language": language,
        "vat_included": invoice.prices_include_tax,
        "notes": invoice.internal_notes,
        "positions": positions,
    }
    if invoice.title or invoice.notes:
        body["texts"] = [_drop_none({"status": "D", "title": invoice.title, "introduction": invoice.notes})]
    return _drop_none(body)


@from_backend
def decode_invoice(item: Mapping[str, Any], *, customer_number: str | None = None) -> Invoice:
    # Runs for every listed invoice: values are read once, in the order the errors were always reported.
    get = item.get
    contact = get("contact")
    if customer_number is None and isinstance(contact, Mapping):
        customer_number = _text(contact.get("number"))
    if customer_number is None:
        customer_number = _text(get("contact_id"))
    currency = _text(get("currency"))
    lines = []
    for index, position in enumerate(get("positions") or []):
        if isinstance(position, Mapping):
            line = _decode_position(position, index, currency)
            if line is not None:
                lines.append(line)
    total = at_scale_or_none(_exact(get("total"), "total"), currency)
    if not lines:  # only text/header positions: keep the invoice readable, the positions stay in `raw`
        lines = [InvoiceLine(description="(no item positions)", unit_price=total or Decimal(0))]
    texts = get("texts")
    first_text = texts[0] if isinstance(texts, list) and texts and isinstance(texts[0], Mapping) else {}
    number = _text(get("number")) or _text(get("id"))
    issue_date = _date(get("date"), "date")
    if issue_date is None:
        raise ResponseError(f"invoice {number!r} without a date", backend=BACKEND)
    due_date = _date(get("due"), "due")
    prices_include_tax = bool(get("vat_included"))
    title = _text(first_text.get("title"))
    notes = _text(first_text.get("introduction"))
    internal_notes = _text(get("notes"))
    payment_reference = _text(get("isr_reference_number"))
    status = neutral_status(get("status"))
    paid_amount = at_scale_or_none(_exact(get("total_paid"), "total_paid"), currency)
    try:
        return Invoice(
            number=number or "",
            customer_number=customer_number,
            issue_date=issue_date,
            due_date=due_date,
            currency=currency,
            lines=lines,
            prices_include_tax=prices_include_tax,
            title=title,
            notes=notes,
            internal_notes=internal_notes,
            payment_reference=payment_reference,
            status=status,
            total=total,
            paid_amount=paid_amount,
            id=_text(get("id")),
            raw=item,
        )
    except ValidationError as exc:
        raise _does_not_fit(exc, "invoice") from None


def _decode_position(position: Mapping[str, Any], index: int, currency: str | None = None) -> InvoiceLine | None:
    get = position.get
    if get("type", c.POSITION_TYPE) != c.POSITION_TYPE:
        return None
    discount = _exact(get("discount_rate"), "discount_rate", index)
    unit_id = get("unit_id")
    name = get("name")
    description = get("description")
    note = _text(description) if name else None
    unit_price = at_scale(_exact(get("price"), "price", index) or Decimal(0), currency)
    quantity = _exact(get("amount"), "amount", index) or Decimal(0)
    tax_rate = _exact(get("vat"), "vat", index)
    try:
        return InvoiceLine(
            description=str(name or description or "-"),
            note=note,
            unit_price=unit_price,
            quantity=quantity,
            tax_rate=tax_rate,
            discount_percent=discount if discount and get("discount_type", "P") == "P" else None,
            item_number=_text(get("number")),
            unit=None if unit_id is None else str(unit_id),
        )
    except ValidationError as exc:
        raise _does_not_fit(exc, "invoice position") from None


# --- payments ----------------------------------------------------------------------------------------------------


def payment_issues(payment: Payment) -> list[FieldError]:
    errors: list[FieldError] = []
    if payment.kind not in PAYMENT_TYPE_BY_KIND:
        kinds = ", ".join(k.value for k in PAYMENT_TYPE_BY_KIND)
        errors.append(FieldError("kind", f"smallinvoice records only these payment kinds: {kinds}"))
    if payment.amount is not None and payment.amount < 0:
        errors.append(FieldError("amount", "must be positive (smallinvoice has no negative payments)"))
    if payment.account is not None and payment.account not in c.PAYMENT_CHANNELS:
        errors.append(FieldError("account", f"must be a smallinvoice payment channel: {', '.join(c.PAYMENT_CHANNELS)}"))
    if payment.reference:
        errors.append(FieldError("reference", "smallinvoice payments have no reference field (use memo)"))
    return errors


def encode_payment(payment: Payment) -> dict[str, Any]:
    return _drop_none(
        {
            "type": PAYMENT_TYPE_BY_KIND[payment.kind],
            "amount": payment.amount,
            "date": payment.date.isoformat(),
            "channel": payment.account,
            "notes": payment.memo,
        }
    )


@from_backend
def decode_payment(item: Mapping[str, Any], *, invoice_number: str, currency: str | None = None) -> Payment:
    kind = PAYMENT_KIND_BY_TYPE.get(str(item.get("type") or "N"))
    if kind is None:
        raise ResponseError(f"unknown payment type {item.get('type')!r}", backend=BACKEND)
    amount = at_scale_or_none(_decimal(item.get("amount"), "amount"), currency)
    date = _date(item.get("date"), "date")
    if amount is None or date is None:
        raise ResponseError("a payment without amount or date", backend=BACKEND)

    def build() -> Payment:
        return Payment(
            invoice_number=invoice_number,
            date=date,
            amount=amount,
            kind=kind,
            account=_text(item.get("channel")),
            currency=currency,
            memo=_text(item.get("notes")),
            id=_text(item.get("id")),
            raw=item,
        )

    result: Payment = _decoded(build, "payment")
    return result


# --- errors ------------------------------------------------------------------------------------------------------


def error_info(response: Response) -> ErrorInfo:
    """Read `{code, message, meta}` (and the OAuth server's `{error, error_description}`) out of an error."""
    try:
        detail = response.json()
    except ResponseError:
        text = response.text()[:300].strip()
        return ErrorInfo(text or f"HTTP {response.status}")
    if not isinstance(detail, Mapping):
        return ErrorInfo(f"HTTP {response.status}", detail)
    message = ""
    for key in ("message", "error_description", "error"):
        value = detail.get(key)
        if isinstance(value, str) and value:
            message = value
            break
    message = message or f"HTTP {response.status}"
    code = detail.get("code")
    if code is not None and not isinstance(code, bool):
        message = f"{message} (code {code})"
    meta = detail.get("meta")
    fields: list[FieldError] = []
    if isinstance(meta, Mapping):
        errors = meta.get("errors")
        if isinstance(errors, list):
            for entry in errors:
                if isinstance(entry, Mapping):
                    fields.append(FieldError(str(entry.get("key") or "?"), str(entry.get("message") or "invalid")))
        if fields:
            message += ": " + "; ".join(str(f) for f in fields)
        feature = meta.get("feature")
        if feature is not None:
            extra = f"feature {feature}"
            if meta.get("limit") is not None:
                extra += f", limit {meta.get('limit')}"
            if isinstance(meta.get("plans"), list):
                extra += ", available in plans " + ", ".join(str(p) for p in meta["plans"])
            message += f" [{extra}]"
        if isinstance(meta.get("error_type"), str):
            message += f" [{meta['error_type']}]"
    return ErrorInfo(message, detail, tuple(fields))
