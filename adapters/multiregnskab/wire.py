"""Pure encode/decode for Multi-Regnskab (no I/O): Danish money strings, tokens, and the JSON shapes.

Shapes follow the Public Client API v1.0.17 spec. The System-to-System API reuses them where the spec marks a
schema "Common in both APIs" (Customer, Invoice); for the rest the S2S adapter assumes the same shapes and renames
keys through its contract (see `s2s_contract.py`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import email.utils
import functools
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from accounting_bridge.errors import FieldError, ResponseError, ValidationError
from accounting_bridge.ledger import Company
from accounting_bridge.models import (
    Address,
    BankTransaction,
    Customer,
    CustomerKind,
    Document,
    DocumentRef,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    Registration,
    received_from_backend,
)
from accounting_bridge.money import at_scale
from accounting_bridge.transport.auth import Token

__all__ = [
    "MoneyFormatError",
    "decode_archive_file",
    "decode_archive_line",
    "decode_bank_posting",
    "decode_company",
    "decode_customer",
    "decode_token",
    "encode_bank_posting",
    "encode_customer",
    "encode_file_upload",
    "encode_invoice",
    "encode_registration",
    "format_money",
    "invoice_line_amount",
    "parse_money",
    "rename_keys",
    "xid_of",
]

BACKEND = "multiregnskab"


# --- money ------------------------------------------------------------------------------------------------------


class MoneyFormatError(ValueError):
    """A text that is not an amount in Danish or international notation."""


_DIGITS = re.compile(r"\d+")


def format_money(value: Decimal, *, thousands: bool = False) -> str:
    """Decimal → Danish amount: comma decimals, at least two of them; "." groups thousands when asked.

    ``format_money(Decimal("-1250"))`` → ``"-1250,00"``; with ``thousands=True`` → ``"-1.250,00"``.
    More than two decimals are kept (never rounded away): ``Decimal("0.125")`` → ``"0,125"``.
    """
    if not isinstance(value, Decimal) or not value.is_finite():
        raise MoneyFormatError(f"not a finite Decimal: {value!r}")
    if value == 0:
        value = abs(value)  # no "-0,00"
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent > -2:
        value = value.quantize(Decimal("0.01"))
    text = format(value, "f")
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    if thousands:
        whole = f"{int(whole):,}".replace(",", ".")
    return f"{sign}{whole},{fraction}"


def format_quantity(value: Decimal) -> str:
    """Decimal → Danish number without padding: ``Decimal("1200.50")`` → ``"1200,5"``, ``Decimal(3)`` → ``"3"``."""
    text = format(value.normalize(), "f") if value != value.to_integral_value() else str(int(value))
    return text.replace(".", ",")


def parse_money(text: str) -> Decimal:
    """Danish or international amount text → Decimal, exactly.

    Policy for ambiguous text: the API documents Danish amounts ("9.999,99"), so a text that reads validly both
    ways gets the **Danish** reading: ``"1,250"`` = 1.25 (decimal comma, not international thousands) and
    ``"1.250"`` = 1250 (thousands point, not an international decimal point). International notation is decoded
    only where it is the sole valid reading (``"1,250.00"``, ``"1,250,000"``, ``"0.125"``, ``"12.50"``).

    Accepted: ``"9.999,99"``, ``"-1250,00"``, ``"197,00"``, ``"1250.00"``, ``"1,250.00"``, ``"1.250"`` (Danish
    thousands), ``"+5"``, a trailing minus (``"100,00-"``), spaces as thousands separators. Rules: when both "."
    and "," occur, the last one is the decimal separator and the other must group thousands in threes; a lone ","
    is the Danish decimal comma; several "," or several "." group thousands; a lone "." is a decimal point,
    except that exactly three digits after it with a 1-3 digit whole part not starting with 0 read as Danish
    thousands ("1.250" = 1250). Anything else raises `MoneyFormatError`.
    """
    if not isinstance(text, str):
        raise MoneyFormatError(f"amount must be text, not {type(text).__name__}")
    s = text.strip().replace("\u00a0", " ").replace("\u202f", " ")
    sign = ""
    if s[:1] in "+-" and s:
        sign, s = ("-" if s[0] == "-" else ""), s[1:].strip()
    elif s.endswith("-"):
        sign, s = "-", s[:-1].strip()
    if " " in s:
        if not re.fullmatch(r"\d{1,3}(?: \d{3})+(?:[.,]\d+)?", s):
            raise MoneyFormatError(f"not an amount: {text!r}")
        s = s.replace(" ", "")
    if not s:
        raise MoneyFormatError(f"not an amount: {text!r}")
    dots, commas = s.count("."), s.count(",")
    if dots and commas:
        decimal_sep = "," if s.rfind(",") > s.rfind(".") else "."
        group_sep = "." if decimal_sep == "," else ","
        whole, _, fraction = s.rpartition(decimal_sep)
        if s.count(decimal_sep) != 1 or not _grouped(whole, group_sep) or not _DIGITS.fullmatch(fraction):
            raise MoneyFormatError(f"not an amount: {text!r}")
        number = whole.replace(group_sep, "") + "." + fraction
    elif commas:
        if commas == 1:
            whole, _, fraction = s.partition(",")
            if not _DIGITS.fullmatch(whole) or not _DIGITS.fullmatch(fraction):
                raise MoneyFormatError(f"not an amount: {text!r}")
            number = whole + "." + fraction
        elif _grouped(s, ","):
            number = s.replace(",", "")
        else:
            raise MoneyFormatError(f"not an amount: {text!r}")
    elif dots:
        whole, _, fraction = s.partition(".")
        if dots > 1:
            if not _grouped(s, "."):
                raise MoneyFormatError(f"not an amount: {text!r}")
            number = s.replace(".", "")
        elif not _DIGITS.fullmatch(whole) or not _DIGITS.fullmatch(fraction):
            raise MoneyFormatError(f"not an amount: {text!r}")
        elif len(fraction) == 3 and 1 <= len(whole) <= 3 and not whole.startswith("0"):
            number = whole + fraction  # Danish thousands: "1.250" = 1250
        else:
            number = whole + "." + fraction
    else:
        if not _DIGITS.fullmatch(s):
            raise MoneyFormatError(f"not an amount: {text!r}")
        number = s
    try:
        return Decimal(sign + number)
    except InvalidOperation:  # pragma: no cover - the patterns above only let digits through
        raise MoneyFormatError(f"not an amount: {text!r}") from None


def _grouped(whole: str, sep: str) -> bool:
    if sep not in whole:
        return bool(_DIGITS.fullmatch(whole))
    return re.fullmatch(r"\d{1,3}(?:" + re.escape(sep) + r"\d{3})+", whole) is not None


def _money(data: Mapping[str, Any], key: str, what: str, currency: str | None = None) -> Decimal | None:
    """The amount at `key` at the currency's scale (``"1250"`` and a JSON ``1250`` → ``1250.00``; finer digits kept,
    see `accounting_bridge.money`)."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return at_scale(Decimal(value), currency)  # tolerate a JSON number
    try:
        return at_scale(parse_money(value), currency)
    except MoneyFormatError:
        raise ResponseError(f"{what}: unreadable amount in {key!r}", backend=BACKEND) from None


# --- generic helpers --------------------------------------------------------------------------------------------


def rename_keys(value: Any, names: Mapping[str, str]) -> Any:
    """Recursively rename dict keys (``{"debitCreditlines": "debitCreditLines"}``); other values unchanged."""
    if not names:
        return value
    if isinstance(value, Mapping):
        return {names.get(k, k): rename_keys(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rename_keys(v, names) for v in value]
    return value


def xid_of(data: Any, what: str, key: str = "xid") -> int:
    """The `xid` of an `EntityIdentification` response."""
    if isinstance(data, Mapping):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise ResponseError(f"{what}: response without a numeric {key!r}", backend=BACKEND)


_R = TypeVar("_R")


def _server_data(what: str) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """A decoder of server data: built under `received_from_backend` (a stray control character in a bank text
    does not break a listing); what the models still refuse is the answer's fault, a `ResponseError` as in the
    other adapters, never a `ValidationError` that blames the caller."""

    def wrap(decode: Callable[..., _R]) -> Callable[..., _R]:
        @functools.wraps(decode)
        def decoded(*args: Any, **kwargs: Any) -> _R:
            try:
                with received_from_backend():
                    return decode(*args, **kwargs)
            except ValidationError as exc:
                raise ResponseError(
                    f"the {what} sent by Multi-Regnskab does not fit the model: {exc.message}", backend=BACKEND
                ) from None

        return decoded

    return wrap


def _require_mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ResponseError(f"{what}: expected a JSON object", backend=BACKEND)
    return data


def list_of(data: Any, key: str, what: str, *, required: bool = True) -> list[Mapping[str, Any]]:
    """The list under `key` of a response object (``{"bpList": [...]}``); every item must be an object."""
    body = _require_mapping(data, what)
    items = body.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ResponseError(f"{what}: expected a list of objects under {key!r}", backend=BACKEND)
    return items


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value != "" else None


def _date(data: Mapping[str, Any], key: str, what: str) -> _dt.date | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        return _dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ResponseError(f"{what}: unreadable date in {key!r}", backend=BACKEND) from None


# --- tokens -----------------------------------------------------------------------------------------------------

#: `tokenExpires` has no zone; the spec labels its other timestamps CET. Configurable (setting `token_timezone`).
DEFAULT_TOKEN_TIMEZONE = "Europe/Copenhagen"  # noqa: S105 - a time zone, not a secret


def decode_token(
    data: Any,
    *,
    timezone: str = DEFAULT_TOKEN_TIMEZONE,
    server_date: str | None = None,
    now: _dt.datetime | None = None,
) -> Token:
    """`TokenResponse {token, tokenExpires "YYYY-MM-DDTHH:mm:ss.SSS" (no zone), refreshToken}` → `Token`.

    `tokenExpires` is read in `timezone`. With the answer's `Date` header (`server_date`) and our clock (`now`),
    the lifetime is measured on the server's own clock (`tokenExpires` − `Date`, both in `timezone`) and applied
    to ours, so a server clock that is off does not make every token look expired. When that gives no positive
    lifetime (e.g. the server writes another zone) the expiry is taken as written; one already past is dropped
    by `TokenAuth` (the token is then renewed after a 401, not before every request).
    """
    body = _require_mapping(data, "token response")
    token, refresh, expires = body.get("token"), body.get("refreshToken"), body.get("tokenExpires")
    if not isinstance(token, str) or not token:
        raise ResponseError("token response without a token", backend=BACKEND)
    expires_at = None
    if isinstance(expires, str) and expires:
        try:
            local = _dt.datetime.fromisoformat(expires)
        except ValueError:
            raise ResponseError("token response with an unreadable tokenExpires", backend=BACKEND) from None
        zone = zoneinfo.ZoneInfo(timezone)
        expires_at = local if local.tzinfo else local.replace(tzinfo=zone)
        lifetime = _lifetime_on_server_clock(local, server_date, zone)
        if lifetime is not None and now is not None:
            expires_at = now + lifetime
    return Token(
        access_token=token,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
    )


def _lifetime_on_server_clock(
    expires: _dt.datetime, server_date: str | None, zone: zoneinfo.ZoneInfo
) -> _dt.timedelta | None:
    """`tokenExpires` − the answer's `Date` (an HTTP date, UTC), both read in the token zone; None if unknown or
    not positive."""
    if not server_date:
        return None
    try:
        sent = email.utils.parsedate_to_datetime(server_date)
    except (TypeError, ValueError, IndexError):
        return None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=_dt.timezone.utc)  # an HTTP date is GMT
    lifetime = (expires if expires.tzinfo else expires.replace(tzinfo=zone)) - sent
    return lifetime if lifetime > _dt.timedelta(0) else None


def format_local_timestamp(when: _dt.datetime) -> str:
    """naive local datetime → ``YYYY-MM-DDTHH:mm:ss.SSS`` (the API's timestamp shape)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


# --- companies --------------------------------------------------------------------------------------------------


def decode_companies(data: Any) -> tuple[list[Company], list[int]]:
    """`CompaniesAndAccess` → companies and the `lastCompanies` xids (most recent first)."""
    items = list_of(data, "companiesAndAccessList", "companies")
    last = _require_mapping(data, "companies").get("lastCompanies") or []
    if not isinstance(last, list):
        raise ResponseError("companies: lastCompanies is not a list", backend=BACKEND)
    return [decode_company(item) for item in items], [x for x in last if isinstance(x, int)]


@_server_data("company")
def decode_company(data: Mapping[str, Any]) -> Company:
    xid = xid_of(data, "company")
    return Company(id=str(xid), name=str(data.get("name") or ""), raw=dict(data))


# --- customers ("Common in both APIs") --------------------------------------------------------------------------

CUSTOMER_LIMITS = {
    "customerName": 150,
    "customerNumber": 20,
    "companyIdentifier": 20,
    "address1": 80,
    "address2": 80,
    "zipCode": 10,
    "city": 80,
    "countryCode": 2,
    "phone": 20,
    "invoiceAtt": 80,
    "invoiceEmail": 60,
    "currencyCode": 3,
}

#: customer payload key → neutral field path, for error messages
CUSTOMER_FIELDS = {
    "customerName": "name",
    "customerNumber": "number",
    "companyIdentifier": "vat_number",
    "address1": "address.street",
    "address2": "address.street2",
    "zipCode": "address.postcode",
    "city": "address.city",
    "countryCode": "address.country",
    "phone": "phone",
    "invoiceAtt": "contact_name",
    "invoiceEmail": "email",
    "currencyCode": "currency",
    "languageCode": "language",
}


def encode_customer(customer: Customer, company_xid: int) -> dict[str, Any]:
    """Neutral customer → `Customer` (new: xid 0, entityVersion 0). Defaults: DKK, DA, DK."""
    address = customer.address or Address()
    payload: dict[str, Any] = {
        "companyXid": company_xid,
        "xid": 0,
        "entityVersion": 0,
        "customerNumber": customer.number,
        "customerName": customer.name,
        "privatePerson": customer.kind is CustomerKind.PERSON,
        "address1": address.street,
        "address2": address.street2,
        "zipCode": address.postcode,
        "city": address.city,
        "countryCode": (address.country or "DK").upper(),
        "currencyCode": (customer.currency or "DKK").upper(),
        "languageCode": (customer.language or "DA").upper(),
        "companyIdentifier": customer.vat_number,
        "phone": customer.phone,
        "invoiceEmail": customer.email,
        "invoiceAtt": customer.contact_name,
    }
    if customer.payment_terms_days is not None:
        payload["paymentTermsType"] = "NET"
        payload["paymentTermsDays"] = customer.payment_terms_days
    return {k: v for k, v in payload.items() if v is not None}


@_server_data("customer")
def decode_customer(data: Mapping[str, Any]) -> Customer:
    xid = xid_of(data, "customer")
    country = _text(data, "countryCode")
    address = Address(
        street=_text(data, "address1"),
        street2=_text(data, "address2"),
        postcode=_text(data, "zipCode"),
        city=_text(data, "city"),
        country=country.upper() if country else None,
    )
    terms = data.get("paymentTermsDays")
    email = _text(data, "invoiceEmail")
    return Customer(
        number=_text(data, "customerNumber") or str(xid),
        name=_text(data, "customerName") or "(no name)",
        kind=CustomerKind.PERSON if data.get("privatePerson") is True else CustomerKind.COMPANY,
        email=email if email and "@" in email else None,
        phone=_text(data, "phone"),
        address=address if any(attr for attr in (address.street, address.postcode, address.city)) else None,
        currency=_text(data, "currencyCode"),
        language=(_text(data, "languageCode") or "").lower() or None,
        vat_number=_text(data, "companyIdentifier"),
        payment_terms_days=terms if isinstance(terms, int) and not isinstance(terms, bool) and terms >= 0 else None,
        contact_name=_text(data, "invoiceAtt"),
        id=str(xid),
        raw=dict(data),
    )


# --- invoices ("Common in both APIs") ---------------------------------------------------------------------------


ORE = Decimal("0.01")


def invoice_line_amount(line: InvoiceLine) -> Decimal:
    """An invoice draft line's `amount`: quantity × unit price rounded to øre, ROUND_HALF_UP (half away from zero).

    ``1.5 × 19.95 = 29.925`` → ``29.93``; ``-0.125`` → ``-0.13``. The API's amounts are kroner and øre (registrations
    refuse more than two decimals in `validate()`); an invoice line amount is computed, so it is rounded instead of
    refused. `numberOfUnits` and `priceEach` are sent as given (a price may have more decimals).
    """
    return line.net_amount.quantize(ORE, rounding=ROUND_HALF_UP)


def encode_invoice(
    invoice: Invoice,
    *,
    company_xid: int,
    customer_xid: int,
    line_products: Sequence[tuple[int, int | None]],
) -> dict[str, Any]:
    """Neutral invoice → `Invoice` draft. `line_products[i]` = (productTypeXid, productXid or None) of line i.

    The spec's `required` names `invoiceDate` but the property is `date`: `date` is sent (as the M2 client does).
    Each line's `amount` is `invoice_line_amount(line)`: rounded to øre, half up.
    """
    lines: list[dict[str, Any]] = []
    for index, (line, (type_xid, product_xid)) in enumerate(zip(invoice.lines, line_products, strict=True)):
        item: dict[str, Any] = {
            "lineNo": index,
            "lineText": line.description,
            "numberOfUnits": format_quantity(line.quantity),
            "priceEach": format_money(line.unit_price),
            "amount": format_money(invoice_line_amount(line)),
            "productTypeXid": type_xid,
        }
        if product_xid is not None:
            item["productXid"] = product_xid
        if line.unit:
            item["unitOfMeasureCode"] = line.unit
        if line.note:
            item["lineNote"] = line.note
        lines.append(item)
    payload: dict[str, Any] = {
        "companyXid": company_xid,
        "invoiceXid": 0,
        "customerXid": customer_xid,
        "date": invoice.issue_date.isoformat(),
        "creditNote": invoice.kind is InvoiceKind.CREDIT_NOTE,
        "offer": False,
        "linesHaveProductId": any(p is not None for _t, p in line_products),
        "linesHaveNumberAndPriceEach": True,
        "reverseCharge": False,
        "lines": lines,
    }
    if invoice.title:
        payload["title"] = invoice.title
    return payload


# --- documents --------------------------------------------------------------------------------------------------


def encode_file_upload(document: Document, *, company_xid: int, keep_hidden: bool) -> dict[str, Any]:
    """Document → `FileUpload` (base64 in JSON)."""
    payload: dict[str, Any] = {
        "companyXid": company_xid,
        "fileBodyBase64": base64.b64encode(document.content).decode("ascii"),
        "contentType": document.content_type,
        "fileName": document.filename,
        "friendlyFilename": document.description or document.filename,
        "keepHiddenUntilRegistration": keep_hidden,
    }
    if document.date is not None:
        payload["date"] = document.date.isoformat()
    return payload


@_server_data("archive file line")
def decode_archive_line(data: Mapping[str, Any]) -> DocumentRef:
    xid = xid_of(data, "archive file line")
    return DocumentRef(id=str(xid), filename=_text(data, "name"), raw=dict(data))


@_server_data("archive file")
def decode_archive_file(data: Any) -> Document:
    body = _require_mapping(data, "archive file")
    try:
        content = base64.b64decode(str(body.get("fileBodyBase64") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise ResponseError("archive file: fileBodyBase64 is not base64", backend=BACKEND) from None
    friendly = _text(body, "friendlyFilename")
    filename = _text(body, "fileName") or friendly or str(body.get("archiveFileXid") or "file")
    return Document(
        filename=filename,
        content=content or b"\0",  # omitFileBody=true gives "": the neutral Document cannot be empty
        content_type=_text(body, "contentType") or "application/octet-stream",
        description=friendly if friendly != filename else None,
        date=_date(body, "date", "archive file"),
    )


# --- registrations ----------------------------------------------------------------------------------------------


def encode_registration(registration: Registration, *, company_xid: int, file_xids: Sequence[int]) -> dict[str, Any]:
    """Neutral registration → `Registration` (note `debitCreditlines` with a lower-case l).

    Positive amounts debit, negative credit, written Danish without thousands separators ("-1250,00").
    """
    lines = []
    for line in registration.lines:
        item: dict[str, Any] = {"accountNumber": line.account, "amount": format_money(line.amount)}
        if line.vat_code:
            item["vatCode"] = line.vat_code
        lines.append(item)
    payload: dict[str, Any] = {
        "companyXid": company_xid,
        "date": registration.date.isoformat(),
        "description": registration.description,
        "debitCreditlines": lines,
    }
    if file_xids:
        payload["filesToAttachXids"] = [{"xid": xid} for xid in file_xids]
    return payload


# --- bank -------------------------------------------------------------------------------------------------------


@_server_data("bank posting")
def decode_bank_posting(data: Mapping[str, Any], *, account: str, currency: str | None) -> BankTransaction:
    xid = xid_of(data, "bank posting")
    day = _date(data, "bankDate", "bank posting")
    if day is None:
        raise ResponseError("bank posting without bankDate", backend=BACKEND)
    amount = _money(data, "bankAmount", "bank posting", currency)
    return BankTransaction(
        account=account,
        date=day,
        amount=amount if amount is not None else at_scale(Decimal(0), currency),
        currency=currency,
        text=_text(data, "bankText"),
        counterparty=_text(data, "extraBankText"),
        reference=_text(data, "externalRef"),
        id=str(xid),
        raw=dict(data),
    )


def encode_bank_posting(transaction: BankTransaction) -> dict[str, Any]:
    """BankTransaction → `BankPosting` shape (used by the S2S submit; the shape itself is an inference)."""
    item: dict[str, Any] = {
        "bankDate": transaction.date.isoformat(),
        "bankText": transaction.text or "",
        "bankAmount": format_money(transaction.amount),
    }
    if transaction.counterparty:
        item["extraBankText"] = transaction.counterparty
    if transaction.reference:
        item["externalRef"] = transaction.reference
    return item


# --- backend limits (pure checks, run by `validate()` before any I/O) -------------------------------------------

MAX_ATTACHMENTS = 3


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _max_len(errors: list[FieldError], value: str | None, limit: int, path: str) -> None:
    if value is not None and len(value) > limit:
        errors.append(FieldError(path, f"longer than {limit} characters (Multi-Regnskab limit)"))


def check_customer(customer: Customer) -> list[FieldError]:
    errors: list[FieldError] = []
    payload = encode_customer(customer, 0)
    for key, limit in CUSTOMER_LIMITS.items():
        value = payload.get(key)
        _max_len(errors, value if isinstance(value, str) else None, limit, CUSTOMER_FIELDS[key])
    for key in ("address1", "zipCode", "city"):
        if not payload.get(key):
            errors.append(FieldError(CUSTOMER_FIELDS[key], "is required by Multi-Regnskab"))
    if payload["languageCode"] not in ("DA", "EN"):
        errors.append(FieldError("language", "Multi-Regnskab knows only 'da' and 'en'"))
    for name in ("iban", "bic"):
        if getattr(customer, name) is not None:
            errors.append(FieldError(name, "Multi-Regnskab customers have no such field (it would be lost)"))
    return errors


def check_document(document: Document, path: str = "") -> list[FieldError]:
    errors: list[FieldError] = []
    prefix = f"{path}." if path else ""
    _max_len(errors, document.filename, 250, prefix + "filename")
    _max_len(errors, document.description, 250, prefix + "description")
    _max_len(errors, document.content_type, 150, prefix + "content_type")
    return errors


def check_registration(registration: Registration) -> list[FieldError]:
    errors: list[FieldError] = []
    total = sum((line.amount for line in registration.lines), Decimal(0))
    if total != 0:
        errors.append(FieldError("lines", f"debits and credits must sum to zero, they sum to {total}"))
    if len(registration.attachments) > MAX_ATTACHMENTS:
        errors.append(
            FieldError("attachments", f"at most {MAX_ATTACHMENTS} attachments, got {len(registration.attachments)}")
        )
    for index, doc in enumerate(registration.attachments):
        errors.extend(check_document(doc, f"attachments[{index}]"))
    for index, line in enumerate(registration.lines):
        if _decimals(line.amount) > 2:
            errors.append(FieldError(f"lines[{index}].amount", "more than two decimals"))
        if line.text is not None:
            errors.append(FieldError(f"lines[{index}].text", "Multi-Regnskab lines have no text (use the description)"))
    if registration.currency is not None and registration.currency.upper() != "DKK":
        errors.append(FieldError("currency", "Multi-Regnskab registrations carry no currency: only DKK is accepted"))
    return errors


def check_invoice(invoice: Invoice) -> list[FieldError]:
    errors: list[FieldError] = []
    _max_len(errors, invoice.title, 100, "title")
    if invoice.tax_lines:
        errors.append(FieldError("tax_lines", "Multi-Regnskab takes VAT from the product type, not tax lines"))
    if invoice.prices_include_tax:
        errors.append(FieldError("prices_include_tax", "Multi-Regnskab line amounts are before VAT"))
    for index, line in enumerate(invoice.lines):
        _max_len(errors, line.description, 100, f"lines[{index}].description")
        _max_len(errors, line.note, 1200, f"lines[{index}].note")
        if line.discount_percent:
            errors.append(FieldError(f"lines[{index}].discount_percent", "Multi-Regnskab has no line discounts"))
    return errors


def customer_differences(payload: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """Keys whose value in a new customer payload differs from a stored customer's (ids and versions ignored)."""
    ignore = {"xid", "entityVersion", "companyXid"}
    return sorted(k for k, v in payload.items() if k not in ignore and existing.get(k, _DEFAULTS.get(k)) != v)


_DEFAULTS: dict[str, Any] = {"privatePerson": False}


def check_shared(item: object) -> list[FieldError]:
    """The rules of the schemas both APIs share: registrations, customers, documents (others: no errors)."""
    if isinstance(item, Registration):
        return check_registration(item)
    if isinstance(item, Customer):
        return check_customer(item)
    if isinstance(item, Document):
        return check_document(item)
    return []
