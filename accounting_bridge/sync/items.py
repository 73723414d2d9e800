"""What push sends, prepared: each item's kind, business key, content hash and dependency level, or its typed error.

Items are neutral models, or mappings ``{"kind": "invoice", "data": {...}}`` (JSON-loaded) built with
`ab.from_dict`, so a float amount is a `ValidationError` naming the field. Per item, never per batch.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from ..converter import from_dict
from ..errors import AccountingError, FieldError, ValidationError
from ..models import Customer, Document, Invoice, InvoiceStatus, Payment, Registration

__all__ = ["KINDS", "LEVELS", "Prepared", "Rejected", "business_key", "content_hash", "decimal_text", "prepare"]

#: kind → model; the kind names are also the journal's `kind` column
KINDS: dict[str, type[Any]] = {
    "customer": Customer,
    "invoice": Invoice,
    "payment": Payment,
    "registration": Registration,
    "document": Document,
}
#: what a backend needs first: a customer before its invoices, an invoice before its payments
LEVELS: dict[str, int] = {"customer": 0, "document": 0, "registration": 0, "invoice": 1, "payment": 2}
#: the field that carries each kind's business key (named in errors)
KEY_FIELDS: dict[str, str] = {
    "customer": "number",
    "invoice": "number",
    "payment": "reference",
    "registration": "reference",
    "document": "filename",
}
#: fields a backend fills in: not part of what was sent
_OUTPUT = frozenset({"id", "raw"})


@attrs.frozen
class Prepared:
    index: int
    kind: str
    key: str
    model: Any
    content_hash: str

    @property
    def level(self) -> int:
        return LEVELS[self.kind]


@attrs.frozen
class Rejected:
    """An item that is not sent: `error` says why, naming the field."""

    index: int
    kind: str | None
    key: str | None
    error: AccountingError
    duplicate_of: int | None = None  # the same item (same content) earlier in the batch: not an error


def business_key(kind: str, model: Any) -> str:
    """The key a backend knows the item by; a payment without a reference is known by what it books."""
    if isinstance(model, Payment):
        if model.reference:
            return f"{model.invoice_number}/{model.reference}"
        booked = (model.date.isoformat(), decimal_text(model.amount), model.kind.value, model.account or "")
        return "/".join((model.invoice_number, *booked))
    if isinstance(model, Registration):
        if not model.reference:
            raise ValidationError(
                FieldError("reference", "is required to push a registration: it is how a resend is recognised"),
                model="Registration",
            )
        return model.reference
    if isinstance(model, Document):
        return model.filename
    return str(model.number)


def decimal_text(value: Decimal) -> str:
    """One text per amount: ``Decimal("50.0")``, ``Decimal("50.00")`` and ``Decimal("5E+1")`` are all ``"50"``."""
    if value == 0:
        return "0"
    exact = decimal.Context(prec=len(value.as_tuple().digits))  # normalize() rounds to the context's precision
    return format(value.normalize(exact), "f")


def _plain(value: Any) -> Any:
    """The value as JSON data for hashing: amounts by `decimal_text`, bytes by digest, no output-only fields."""
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value)) if f.name not in _OUTPUT}
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def content_hash(model: Any) -> str:
    """sha256 of the model's content (output-only `id` and `raw` left out, at every level): equal content, equal
    hash, however its amounts are written. An invoice without a status is created open, so it hashes as OPEN."""
    if isinstance(model, Invoice) and model.status is None:
        model = attrs.evolve(model, status=InvoiceStatus.OPEN)
    text = json.dumps(_plain(model), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _kind_of(model: Any) -> str | None:
    for kind, cls in KINDS.items():
        if isinstance(model, cls):
            return kind
    return None


def _model(item: Any) -> tuple[str, Any]:
    kind = _kind_of(item)
    if kind is not None:
        return kind, item
    if not isinstance(item, Mapping):
        models = ", ".join(c.__name__ for c in KINDS.values())
        problem = f"must be a {models} or a mapping {{'kind': ..., 'data': {{...}}}}, not {type(item).__name__}"
        raise ValidationError(FieldError("", problem))
    kind = item.get("kind")
    if kind not in KINDS:
        raise ValidationError(FieldError("kind", f"{kind!r} is not one of: {', '.join(KINDS)}"))
    extra = sorted(str(k) for k in item if k not in ("kind", "data"))
    if extra:
        raise ValidationError(FieldError(extra[0], "unknown field (an item is {'kind': ..., 'data': {...}})"))
    return kind, from_dict(KINDS[kind], item.get("data"))


def prepare(items: Iterable[Any]) -> tuple[list[Prepared], list[Rejected]]:
    """Each item converted and keyed, in order; a key seen before with other content is refused (the first
    wins), with the same content it is a duplicate (sent once)."""
    prepared: list[Prepared] = []
    rejected: list[Rejected] = []
    seen: dict[tuple[str, str], Prepared] = {}
    for index, item in enumerate(items):
        kind: str | None = None
        key: str | None = None
        try:
            kind, model = _model(item)
            key = business_key(kind, model)
            ready = Prepared(index, kind, key, model, content_hash(model))
        except AccountingError as exc:
            rejected.append(Rejected(index, kind, key, exc))
            continue
        first = seen.get((kind, key))
        if first is None:
            seen[(kind, key)] = ready
            prepared.append(ready)
        elif first.content_hash == ready.content_hash:
            rejected.append(Rejected(index, kind, key, _duplicate(kind, key, first.index, same=True), first.index))
        else:
            rejected.append(Rejected(index, kind, key, _duplicate(kind, key, first.index, same=False)))
    return prepared, rejected


def _duplicate(kind: str, key: str, first: int, *, same: bool) -> ValidationError:
    what = "the same content" if same else "different content"
    return ValidationError(
        FieldError(KEY_FIELDS[kind], f"{kind} {key!r} is also item {first} of this batch, with {what}"),
        model=KINDS[kind].__name__,
    )
