"""Neutral models: frozen, keyword-only attrs classes; money is Decimal, dates are calendar dates.

Constructing a model checks what holds for every backend (types, signs, balanced registrations, text that can be
sent) and raises `ValidationError` naming the field. Text never holds a lone surrogate; free text (names,
descriptions, addresses, notes) holds no control character but tab, LF and CR; business keys (numbers, references,
accounts, codes, file names) hold none at all (see `safety`). Backend-specific limits (text lengths, attachment
counts, keys that must fit in a URL path) are checked by the adapter before any I/O.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import enum
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from types import MappingProxyType, MemberDescriptorType
from typing import Any, TypeVar

import attrs

from .errors import FieldError, ValidationError
from .safety import FREE_TEXT_FORBIDDEN, KEY_FORBIDDEN, describe_forbidden

__all__ = [
    "Address",
    "BankTransaction",
    "Customer",
    "CustomerKind",
    "Document",
    "DocumentRef",
    "Invoice",
    "InvoiceKind",
    "InvoiceLine",
    "InvoiceStatus",
    "Payment",
    "PaymentKind",
    "PostingLine",
    "Registration",
    "RegistrationRef",
    "TaxLine",
    "from_backend",
    "received_from_backend",
]


class CustomerKind(str, enum.Enum):
    COMPANY = "company"
    PERSON = "person"


class InvoiceKind(str, enum.Enum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceStatus(str, enum.Enum):
    DRAFT = "draft"
    OPEN = "open"
    OVERDUE = "overdue"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CANCELLED = "cancelled"


class PaymentKind(str, enum.Enum):
    PAYMENT = "payment"
    DISCOUNT = "discount"
    CASH_DISCOUNT = "cash_discount"
    BANK_FEE = "bank_fee"
    WRITE_OFF = "write_off"
    ROUNDING = "rounding"


# --- field coercion: accept the obvious spellings, refuse what would lose money or meaning ---------------------
#
# Fields are tagged with metadata; `_coerce` runs first in every `__attrs_post_init__`, so all problems of one
# model are reported together, each with its field name.


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (bool, float)):
        raise ValueError(f"must be a Decimal or a decimal string, not {type(value).__name__} {value!r}")
    elif isinstance(value, (int, str)):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise ValueError(f"must be a Decimal, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"must be a finite number, not {result}")
    return result


def _as_date(value: Any) -> _dt.date:
    if isinstance(value, _dt.datetime):
        raise ValueError("must be a calendar date (datetime.date), not a datetime")
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None
    raise ValueError(f"must be a datetime.date, not {type(value).__name__}")


def _as_enum(cls: type[enum.Enum], value: Any) -> enum.Enum:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"{value!r} is not one of: {', '.join(str(m.value) for m in cls)}") from None


def _coerce(instance: Any) -> None:
    """Normalise tagged fields in place; raise one `ValidationError` listing every field that cannot be."""
    errors: list[FieldError] = []
    for field in attrs.fields(type(instance)):
        kind = field.metadata.get("kind")
        value = getattr(instance, field.name)
        if kind is None or value is None:
            continue
        try:
            if kind == "money":
                value = _as_decimal(value)
            elif kind == "date":
                value = _as_date(value)
            elif kind == "enum":
                value = _as_enum(field.metadata["enum"], value)
            elif kind == "items":
                value = _as_items(field.metadata["item"], field.name, value, errors)
        except ValueError as exc:
            errors.append(FieldError(field.name, str(exc)))
            continue
        object.__setattr__(instance, field.name, value)
    _raise(errors, type(instance).__name__)


def _as_items(cls: type[Any], name: str, value: Any, errors: list[FieldError]) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValueError(f"must be a list of {cls.__name__}")
    items = tuple(value)
    for index, item in enumerate(items):
        if not isinstance(item, cls):
            errors.append(FieldError(f"{name}[{index}]", f"must be a {cls.__name__}, not {type(item).__name__}"))
    return items


def _freeze_raw(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, MappingProxyType):
        return MappingProxyType(dict(value))
    return value


def _money_field(*, default: Any = None) -> Any:
    return attrs.field(default=default, metadata={"kind": "money"})


def _date_field(*, default: Any = None) -> Any:
    return attrs.field(default=default, metadata={"kind": "date"})


def _enum_field(cls: type[enum.Enum], default: Any) -> Any:
    return attrs.field(default=default, metadata={"kind": "enum", "enum": cls})


def _items_field(cls: type[Any], **kwargs: Any) -> Any:
    return attrs.field(metadata={"kind": "items", "item": cls}, **kwargs)


def _id_field() -> Any:
    return attrs.field(default=None, eq=False)


def _raw_field() -> Any:
    """The backend's payload as decoded; read-only, excluded from equality and repr."""
    return attrs.field(default=None, eq=False, repr=False, converter=_freeze_raw)


def _check(errors: list[FieldError], condition: bool, path: str, message: str) -> None:
    if not condition:
        errors.append(FieldError(path, message))


def _required_text(errors: list[FieldError], value: Any, path: str, *, key: bool = False) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(path, "is required (non-empty text)"))
        return
    _sendable(errors, value, path, key)


def _optional_text(errors: list[FieldError], value: Any, path: str, *, key: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        errors.append(FieldError(path, f"must be text, not {type(value).__name__}"))
        return
    _sendable(errors, value, path, key)


#: True while models describe what a backend sent (see `received_from_backend`).
_RECEIVING: contextvars.ContextVar[bool] = contextvars.ContextVar("accounting_bridge_receiving", default=False)
_R = TypeVar("_R")
_M = TypeVar("_M")


@contextlib.contextmanager
def received_from_backend() -> Iterator[None]:
    """Models built inside describe what a backend sent: the rule that text can be sent (no control character, no
    lone surrogate) is not applied, so one odd record (a bank text with a stray control character) cannot break a
    whole listing. Every other check holds. Sending such a model back is refused as usual, by the adapter's
    validation of caller input."""
    token = _RECEIVING.set(True)
    try:
        yield
    finally:
        _RECEIVING.reset(token)


def from_backend(decode: Callable[..., _R]) -> Callable[..., _R]:
    """Decorator for an adapter's decoder: runs it under `received_from_backend`."""

    @functools.wraps(decode)
    def decoded(*args: Any, **kwargs: Any) -> _R:
        token = _RECEIVING.set(True)  # `received_from_backend` without a generator per decoded record
        try:
            return decode(*args, **kwargs)
        finally:
            _RECEIVING.reset(token)

    return decoded


def _sendable(errors: list[FieldError], value: str, path: str, key: bool) -> None:
    """One precompiled search per string (this runs for every text field of every model built); the context
    variable is only read when something was found."""
    found = (KEY_FORBIDDEN if key else FREE_TEXT_FORBIDDEN).search(value)
    if found is not None and not _RECEIVING.get():
        errors.append(FieldError(path, describe_forbidden(found)))


def _raise(errors: list[FieldError], model: str) -> None:
    if errors:
        raise ValidationError(errors, model=model)


# --- the fast path: one check per class, compiled once ------------------------------------------------------
#
# Most models are built from data that is already right (decoded backend records, callers' own typed values).
# `_fast_path` gives a class an `__attrs_post_init__` generated from its fields once, at import: exact-type tests
# of the tagged fields, the text rules as one regex search over all key texts and one over all free texts, and the
# class's other rules as one expression (and `_fast_init` gives it an `__init__` that sets fields cheaper).
# Anything it cannot accept at once — a value to normalise, any rule broken — goes to the class's full validation
# (the original `__attrs_post_init__`), which alone builds the messages, so every rule and every field path stays
# exactly as it was. A new rule goes into both places: the class's `__attrs_post_init__` (its message) and its
# `rules` expression here; `tests/core/test_models_fast.py` checks on a table of odd values that both decide alike.


def _fast_path(
    *,
    required_keys: tuple[str, ...] = (),
    required_free: tuple[str, ...] = (),
    keys: tuple[str, ...] = (),
    free: tuple[str, ...] = (),
    rules: str = "True",
) -> Callable[[type[_M]], type[_M]]:
    def install(cls: type[_M]) -> type[_M]:
        full_check = cls.__dict__["__attrs_post_init__"]
        source, names = _fast_source(cls, required_keys, required_free, keys, free, rules)
        namespace: dict[str, Any] = {**globals(), **names, "_full": full_check}  # models defined above it
        exec(compile(source, f"<accounting_bridge fast check {cls.__name__}>", "exec"), namespace)  # noqa: S102
        fast = namespace["__attrs_post_init__"]
        fast.__doc__ = full_check.__doc__
        fast.__qualname__ = f"{cls.__qualname__}.__attrs_post_init__"
        fast.full_check = full_check  # the complete validation, for tests
        cls.__attrs_post_init__ = fast  # type: ignore[attr-defined]
        init = _fast_init(cls, namespace)
        if init is not None:
            cls.__init__ = init  # type: ignore[method-assign]
        return cls

    return install


_FACTORY: type[Any] = type(attrs.Factory(list))  # the class of `attrs.Factory(...)` (a function in the stubs)


def _fast_init(cls: type[Any], namespace: dict[str, Any]) -> Any:
    """attrs' `__init__`, but each field set through its slot's own setter (attrs' frozen `__init__` calls a
    bound `object.__setattr__` per field, which looks the slot up by name); then `__attrs_post_init__` as before.
    None where a field needs more than a plain default and a plain converter: the class keeps attrs' own."""
    params, lines = [], []
    for field in attrs.fields(cls):
        slot = cls.__dict__.get(field.name)
        plain = field.init and field.validator is None and field.alias == field.name
        if not plain or isinstance(field.default, _FACTORY) or isinstance(field.converter, attrs.Converter):
            return None
        if not isinstance(slot, MemberDescriptorType):
            return None
        if field.default is attrs.NOTHING:
            params.append(field.name)
        else:
            namespace[f"_default_{field.name}"] = field.default
            params.append(f"{field.name}=_default_{field.name}")
        value = field.name
        if field.converter is not None:
            namespace[f"_convert_{field.name}"] = field.converter
            value = f"_convert_{field.name}({value})"
        namespace[f"_slot_{field.name}"] = slot.__set__
        lines.append(f"    _slot_{field.name}(self, {value})")
    lines.append("    self.__attrs_post_init__()")
    source = f"def __init__(self, *, {', '.join(params)}):\n" + "\n".join(lines) + "\n"
    exec(compile(source, f"<accounting_bridge fast init {cls.__name__}>", "exec"), namespace)  # noqa: S102
    init = namespace.pop("__init__")
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = dict(cls.__init__.__annotations__)
    return init


def _or_empty(name: str) -> str:
    return f"('' if self.{name} is None else self.{name})"


def _fast_source(
    cls: type[Any],
    required_keys: tuple[str, ...],
    required_free: tuple[str, ...],
    keys: tuple[str, ...],
    free: tuple[str, ...],
    rules: str,
) -> tuple[str, dict[str, Any]]:
    """The source of a class's fast `__attrs_post_init__`, and the names it uses."""
    names: dict[str, Any] = {
        "_Decimal": Decimal, "_date": _dt.date, "_receiving": _RECEIVING, "_set": object.__setattr__,
        "_KEY": KEY_FORBIDDEN, "_FREE": FREE_TEXT_FORBIDDEN, "_zero": Decimal(0), "_hundred": Decimal(100),
    }  # fmt: skip
    full = "return _full(self)"
    lines = ["def __attrs_post_init__(self):"]
    for field in attrs.fields(cls):
        kind, value = field.metadata.get("kind"), f"self.{field.name}"
        if kind == "money":
            lines.append(f"    v = {value}")
            lines.append(f"    if v is not None and not (v.__class__ is _Decimal and v.is_finite()): {full}")
        elif kind == "date":
            lines.append(f"    if {value} is not None and {value}.__class__ is not _date: {full}")
        elif kind == "enum":
            names[f"_enum_{field.name}"] = field.metadata["enum"]
            lines.append(f"    if {value} is not None and {value}.__class__ is not _enum_{field.name}: {full}")
        elif kind == "items":
            names[f"_item_{field.name}"] = field.metadata["item"]
            lines += [
                f"    v = {value}",
                "    if v.__class__ is not tuple:",
                f"        if v.__class__ is not list: {full}",
                f"        v = tuple(v); _set(self, {field.name!r}, v)",
                "    for item in v:",
                f"        if item.__class__ is not _item_{field.name}: {full}",
            ]
    required = (*required_keys, *required_free)
    for name in required:
        lines.append(f"    if self.{name}.__class__ is not str or not self.{name}.strip(): {full}")
    # one join per kind of text (it also refuses any value that is not text: TypeError), one search each
    searches, joins = [], []
    for pattern, fields in (("_KEY", (*required_keys, *keys)), ("_FREE", (*required_free, *free))):
        if fields:
            texts = ", ".join(f"self.{n}" if n in required else _or_empty(n) for n in fields)
            joins.append(f"        text{pattern} = ''.join(({texts},))")
            searches.append(f"{pattern}.search(text{pattern})")
    if joins:
        lines += ["    try:", *joins, "    except TypeError:", f"        {full}"]
        lines.append(f"    if ({' or '.join(searches)}) and not _receiving.get(): {full}")
    lines.append(f"    if not ({rules}): {full}")
    return "\n".join(lines) + "\n", names


# --- models ----------------------------------------------------------------------------------------------------


@_fast_path(keys=("postcode", "country"), free=("street", "street2", "city", "region"))
@attrs.frozen(kw_only=True)
class Address:
    street: str | None = None
    street2: str | None = None
    postcode: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None  # ISO 3166 alpha-2 where the backend knows it

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        for name in ("street", "street2", "city", "region"):
            _optional_text(errors, getattr(self, name), name)
        for name in ("postcode", "country"):
            _optional_text(errors, getattr(self, name), name, key=True)
        _raise(errors, "Address")


@_fast_path(
    required_keys=("number",),
    required_free=("name",),
    keys=("email", "phone", "currency", "language", "vat_number", "iban", "bic"),
    free=("contact_name",),
    rules="(self.email is None or '@' in self.email)"
    " and (self.payment_terms_days is None"
    " or (self.payment_terms_days.__class__ is int and self.payment_terms_days >= 0))"
    " and (self.address is None or self.address.__class__ is Address)",
)
@attrs.frozen(kw_only=True)
class Customer:
    number: str
    name: str
    kind: CustomerKind = _enum_field(CustomerKind, CustomerKind.COMPANY)
    email: str | None = None
    phone: str | None = None
    address: Address | None = None
    currency: str | None = None
    language: str | None = None
    vat_number: str | None = None
    payment_terms_days: int | None = None
    iban: str | None = None
    bic: str | None = None
    contact_name: str | None = None
    id: str | None = _id_field()
    raw: Mapping[str, Any] | None = _raw_field()

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.number, "number", key=True)
        _required_text(errors, self.name, "name")
        for name in ("email", "phone", "currency", "language", "vat_number", "iban", "bic"):
            _optional_text(errors, getattr(self, name), name, key=True)
        _optional_text(errors, self.contact_name, "contact_name")
        if self.email is not None and isinstance(self.email, str):
            _check(errors, "@" in self.email, "email", f"not an e-mail address: {self.email!r}")
        if self.payment_terms_days is not None:
            _check(
                errors,
                isinstance(self.payment_terms_days, int)
                and not isinstance(self.payment_terms_days, bool)
                and self.payment_terms_days >= 0,
                "payment_terms_days",
                "must be a whole number of days >= 0",
            )
        _check(errors, self.address is None or isinstance(self.address, Address), "address", "must be an Address")
        _raise(errors, "Customer")


@_fast_path(
    required_free=("description",),
    keys=("item_number", "account", "tax_code", "unit"),
    free=("note",),
    rules="self.unit_price is not None"
    " and (self.tax_rate is None or _zero <= self.tax_rate <= _hundred)"
    " and (self.discount_percent is None or _zero <= self.discount_percent <= _hundred)",
)
@attrs.frozen(kw_only=True)
class InvoiceLine:
    description: str
    unit_price: Decimal = _money_field()
    quantity: Decimal = _money_field(default=Decimal(1))
    item_number: str | None = None
    account: str | None = None
    tax_rate: Decimal | None = _money_field()  # percent, e.g. Decimal("8.1")
    tax_code: str | None = None
    discount_percent: Decimal | None = _money_field()
    unit: str | None = None
    note: str | None = None

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.description, "description")
        _check(errors, self.unit_price is not None, "unit_price", "is required")
        if self.tax_rate is not None:
            _check(errors, Decimal(0) <= self.tax_rate <= 100, "tax_rate", "must be a percentage between 0 and 100")
        if self.discount_percent is not None:
            _check(
                errors, Decimal(0) <= self.discount_percent <= 100, "discount_percent", "must be between 0 and 100"
            )
        for name in ("item_number", "account", "tax_code", "unit"):
            _optional_text(errors, getattr(self, name), name, key=True)
        _optional_text(errors, self.note, "note")
        _raise(errors, "InvoiceLine")

    @property
    def net_amount(self) -> Decimal:
        """quantity × unit_price less the line discount, exact (not rounded)."""
        amount = self.quantity * self.unit_price
        if self.discount_percent:
            amount -= amount * self.discount_percent / Decimal(100)
        return amount


@_fast_path(required_keys=("account",), rules="self.amount is not None")
@attrs.frozen(kw_only=True)
class TaxLine:
    account: str
    amount: Decimal = _money_field()

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.account, "account", key=True)
        _check(errors, self.amount is not None, "amount", "is required")
        _raise(errors, "TaxLine")


@_fast_path(
    required_keys=("number",),
    keys=("customer_number", "currency", "order_number", "payment_reference"),
    free=("title", "notes", "internal_notes"),
    rules="self.issue_date is not None and bool(self.lines)"
    " and (self.customer is None or self.customer.__class__ is Customer)"
    " and (bool(self.customer_number) or self.customer is not None)"
    " and (self.customer is None or self.customer_number is None or self.customer.number == self.customer_number)"
    " and (self.due_date is None or self.due_date >= self.issue_date)",
)
@attrs.frozen(kw_only=True)
class Invoice:
    number: str
    issue_date: _dt.date = _date_field()
    customer_number: str | None = None
    customer: Customer | None = None
    due_date: _dt.date | None = _date_field()
    currency: str | None = None
    lines: Sequence[InvoiceLine] = _items_field(InvoiceLine, default=())
    tax_lines: Sequence[TaxLine] = _items_field(TaxLine, default=())
    kind: InvoiceKind = _enum_field(InvoiceKind, InvoiceKind.INVOICE)
    prices_include_tax: bool = False
    title: str | None = None
    notes: str | None = None
    internal_notes: str | None = None
    order_number: str | None = None
    payment_reference: str | None = None
    # output only
    status: InvoiceStatus | None = _enum_field(InvoiceStatus, None)
    total: Decimal | None = _money_field()
    net_total: Decimal | None = _money_field()
    tax_total: Decimal | None = _money_field()
    paid_amount: Decimal | None = _money_field()
    id: str | None = _id_field()
    raw: Mapping[str, Any] | None = _raw_field()

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.number, "number", key=True)
        _optional_text(errors, self.customer_number, "customer_number", key=True)
        _check(errors, self.issue_date is not None, "issue_date", "is required")
        has_customer = bool(self.customer_number) or self.customer is not None
        _check(errors, has_customer, "customer_number", "customer_number or customer is required")
        if self.customer is not None and self.customer_number is not None:
            _check(
                errors,
                self.customer.number == self.customer_number,
                "customer_number",
                "differs from customer.number",
            )
        if self.due_date is not None and self.issue_date is not None:
            _check(errors, self.due_date >= self.issue_date, "due_date", "is before issue_date")
        _check(errors, bool(self.lines), "lines", "an invoice needs at least one line")
        for name in ("title", "notes", "internal_notes"):
            _optional_text(errors, getattr(self, name), name)
        for name in ("currency", "order_number", "payment_reference"):
            _optional_text(errors, getattr(self, name), name, key=True)
        _raise(errors, "Invoice")

    @property
    def customer_key(self) -> str:
        """The customer number, whichever way it was given."""
        if self.customer_number:
            return self.customer_number
        assert self.customer is not None
        return self.customer.number

    @property
    def lines_net_total(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), Decimal(0))


@_fast_path(
    required_keys=("invoice_number",),
    keys=("account", "currency", "reference"),
    free=("memo",),
    rules="self.date is not None and self.amount is not None and self.amount != 0",
)
@attrs.frozen(kw_only=True)
class Payment:
    invoice_number: str
    date: _dt.date = _date_field()
    amount: Decimal = _money_field()
    account: str | None = None
    kind: PaymentKind = _enum_field(PaymentKind, PaymentKind.PAYMENT)
    currency: str | None = None
    reference: str | None = None
    memo: str | None = None
    id: str | None = _id_field()
    raw: Mapping[str, Any] | None = _raw_field()

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.invoice_number, "invoice_number", key=True)
        _check(errors, self.date is not None, "date", "is required")
        _check(errors, self.amount is not None, "amount", "is required")
        if self.amount is not None:
            _check(errors, self.amount != 0, "amount", "must not be zero")
        for name in ("account", "currency", "reference"):
            _optional_text(errors, getattr(self, name), name, key=True)
        _optional_text(errors, self.memo, "memo")
        _raise(errors, "Payment")


@_fast_path(
    required_keys=("account",),
    keys=("currency", "reference"),
    free=("text", "counterparty"),
    rules="self.date is not None and self.amount is not None",
)
@attrs.frozen(kw_only=True)
class BankTransaction:
    account: str
    date: _dt.date = _date_field()
    amount: Decimal = _money_field()  # signed: + is money in
    value_date: _dt.date | None = _date_field()
    currency: str | None = None
    text: str | None = None
    counterparty: str | None = None
    reference: str | None = None
    id: str | None = _id_field()
    raw: Mapping[str, Any] | None = _raw_field()

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.account, "account", key=True)
        _check(errors, self.date is not None, "date", "is required")
        _check(errors, self.amount is not None, "amount", "is required")
        for name in ("currency", "reference"):
            _optional_text(errors, getattr(self, name), name, key=True)
        for name in ("text", "counterparty"):
            _optional_text(errors, getattr(self, name), name)
        _raise(errors, "BankTransaction")


@_fast_path(
    required_keys=("filename", "content_type"),
    free=("description",),
    rules="self.content.__class__ is bytes and len(self.content) > 0",
)
@attrs.frozen(kw_only=True)
class Document:
    filename: str
    content: bytes = attrs.field(repr=lambda c: f"<{len(c)} bytes>")
    content_type: str = "application/octet-stream"
    description: str | None = None
    date: _dt.date | None = _date_field()

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.filename, "filename", key=True)  # goes into a Content-Disposition header
        _check(errors, isinstance(self.content, bytes), "content", "must be bytes")
        if isinstance(self.content, bytes):
            _check(errors, len(self.content) > 0, "content", "is empty")
        _required_text(errors, self.content_type, "content_type", key=True)
        _optional_text(errors, self.description, "description")
        _raise(errors, "Document")


@attrs.frozen(kw_only=True)
class DocumentRef:
    id: str
    filename: str | None = None
    raw: Mapping[str, Any] | None = _raw_field()


@_fast_path(
    required_keys=("account",),
    keys=("vat_code",),
    free=("text",),
    rules="self.amount is not None and self.amount != 0",
)
@attrs.frozen(kw_only=True)
class PostingLine:
    account: str
    amount: Decimal = _money_field()  # + debit, - credit
    vat_code: str | None = None
    text: str | None = None

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _required_text(errors, self.account, "account", key=True)
        _check(errors, self.amount is not None, "amount", "is required")
        if self.amount is not None:
            _check(errors, self.amount != 0, "amount", "must not be zero")
        _optional_text(errors, self.vat_code, "vat_code", key=True)
        _optional_text(errors, self.text, "text")
        _raise(errors, "PostingLine")


@_fast_path(
    required_free=("description",),
    keys=("reference", "currency"),
    rules="self.date is not None and len(self.lines) >= 2"
    " and sum((line.amount for line in self.lines), _zero) == 0",
)
@attrs.frozen(kw_only=True)
class Registration:
    date: _dt.date = _date_field()
    description: str
    lines: Sequence[PostingLine] = _items_field(PostingLine)
    attachments: Sequence[Document] = _items_field(Document, default=())
    reference: str | None = None  # the caller's business key; makes a resend recognisable
    currency: str | None = None

    def __attrs_post_init__(self) -> None:
        _coerce(self)
        errors: list[FieldError] = []
        _check(errors, self.date is not None, "date", "is required")
        _required_text(errors, self.description, "description")
        _check(errors, len(self.lines) >= 2, "lines", "a registration needs at least two posting lines")
        total = sum((line.amount for line in self.lines), Decimal(0))
        _check(errors, total == 0, "lines", f"debits and credits must sum to zero, they sum to {total}")
        _optional_text(errors, self.reference, "reference", key=True)
        _optional_text(errors, self.currency, "currency", key=True)
        _raise(errors, "Registration")


@attrs.frozen(kw_only=True)
class RegistrationRef:
    id: str | None
    reference: str | None = None
    raw: Mapping[str, Any] | None = _raw_field()
