"""The `memory` adapter: every capability, in process. The reference implementation of the `Adapter` protocol
and a fast fake for users' unit tests (it does not replace the real-socket sandbox tests of real backends).

Like the real backends it refuses duplicates by business key: an invoice number that exists with the same
content is reported as already present, with different content as `Conflict`; a registration whose
`reference` was already submitted returns the first submission's reference.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import AsyncIterator, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from accounting_bridge import jsoncodec, safety
from accounting_bridge.converter import to_dict
from accounting_bridge.errors import Conflict, FieldError, NotFound, ValidationError
from accounting_bridge.filters import in_window, invoice_matches
from accounting_bridge.ledger import AdapterBase, Capability, Company
from accounting_bridge.models import (
    BankTransaction,
    Customer,
    Document,
    DocumentRef,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Payment,
    PaymentKind,
    Registration,
    RegistrationRef,
)
from accounting_bridge.money import at_scale, scale_of
from accounting_bridge.settings import CommonSettings
from accounting_bridge.testing import minimal_pdf
from accounting_bridge.transport.http import Response

__all__ = ["MemoryAdapter", "MemorySettings", "MemoryStore"]


@attrs.define
class MemoryStore:
    """The books of one memory ledger; pass the same store to several `connect` calls to share them."""

    customers: dict[str, Customer] = attrs.field(factory=dict)
    invoices: dict[str, Invoice] = attrs.field(factory=dict)
    payments: list[Payment] = attrs.field(factory=list)
    bank_transactions: list[BankTransaction] = attrs.field(factory=list)
    documents: dict[str, Document] = attrs.field(factory=dict)
    registrations: dict[str, tuple[Registration, RegistrationRef]] = attrs.field(factory=dict)
    ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    def next_id(self) -> str:
        return str(next(self.ids))


def _today() -> _dt.date:
    return _dt.date.today()


@attrs.frozen(kw_only=True)
class MemorySettings(CommonSettings):
    store: MemoryStore | None = attrs.field(default=None, repr=False)
    company: str = "Memory AG"
    max_attachments: int = 3
    max_text_length: int = 255
    #: refuse keys a URL-based backend cannot put into a path ("", ".", "..", "/", "\\", "?", "#", "%"), as
    #: Run my Accounts does: a test against memory then fails where production would
    portable_keys: bool = True
    today: Any = attrs.field(default=_today, repr=False)  # a callable giving "today", for OVERDUE


class MemoryAdapter(AdapterBase):
    name: ClassVar[str] = "memory"
    settings_class: ClassVar[type[Any]] = MemorySettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)

    def __init__(self, settings: MemorySettings) -> None:
        self.settings = settings
        self.store = settings.store if settings.store is not None else MemoryStore()

    # --- validation: the rules real backends enforce, checked before anything is stored ------------------------

    def _key(self, value: Any, field: str) -> str:
        """A key passed to a look-up (`get`, `pdf`, `delete`): checked like a real backend would before any I/O."""
        if self.settings.portable_keys:
            safety.path_segment(value, field, backend=self.name)
            return str(value)
        return safety.business_key(value, field, backend=self.name)

    def _key_errors(self, item: object) -> list[FieldError]:
        name = _KEYS.get(type(item))
        if name is None or not self.settings.portable_keys:
            return []
        problem = safety.segment_problem(getattr(item, name))
        return [] if problem is None else [FieldError(name, problem)]

    def validate(self, item: object) -> None:
        errors: list[FieldError] = self._key_errors(item)
        limit = self.settings.max_text_length
        for name in ("name", "description", "title", "text"):
            value = getattr(item, name, None)
            if isinstance(value, str) and len(value) > limit:
                errors.append(FieldError(name, f"longer than {limit} characters"))
        for index, line in enumerate(getattr(item, "lines", ())):
            text = getattr(line, "description", None) or getattr(line, "text", None)
            if isinstance(text, str) and len(text) > limit:
                errors.append(FieldError(f"lines[{index}]", f"text longer than {limit} characters"))
        if isinstance(item, Invoice):
            for index, line in enumerate(item.lines):
                if line.quantity <= 0 and item.kind is InvoiceKind.INVOICE:
                    errors.append(FieldError(f"lines[{index}].quantity", "must be positive on an invoice"))
        if isinstance(item, Registration) and len(item.attachments) > self.settings.max_attachments:
            errors.append(FieldError("attachments", f"at most {self.settings.max_attachments} attachments"))
        if errors:
            raise ValidationError(errors, backend=self.name, model=type(item).__name__)

    # --- customers ---------------------------------------------------------------------------------------------

    async def list_customers(self) -> AsyncIterator[Customer]:
        for customer in list(self.store.customers.values()):
            yield customer

    async def get_customer(self, number: str) -> Customer:
        try:
            return self.store.customers[self._key(number, "number")]
        except KeyError:
            raise NotFound(f"customer {number!r} not found", backend=self.name, status=404) from None

    async def upsert_customer(self, customer: Customer) -> Customer:
        existing = self.store.customers.get(customer.number)
        stored = attrs.evolve(customer, id=existing.id if existing else self.store.next_id(), raw=to_dict(customer))
        self.store.customers[customer.number] = stored
        return stored

    # --- invoices ----------------------------------------------------------------------------------------------

    async def list_invoices(
        self,
        *,
        status: InvoiceStatus | None,
        since: _dt.date | None,
        until: _dt.date | None,
        customer_number: str | None,
    ) -> AsyncIterator[Invoice]:
        for number in list(self.store.invoices):
            invoice = self._with_state(self.store.invoices[number])
            if invoice_matches(invoice, status=status, since=since, until=until, customer_number=customer_number):
                yield invoice

    async def get_invoice(self, number: str) -> Invoice:
        stored = self.store.invoices.get(self._key(number, "number"))
        if stored is None:
            raise NotFound(f"invoice {number!r} not found", backend=self.name, status=404)
        return self._with_state(stored)

    async def create_invoice(self, invoice: Invoice) -> Invoice:
        customer_number = invoice.customer_key
        if invoice.customer is not None:
            await self.upsert_customer(invoice.customer)
        if customer_number not in self.store.customers:
            raise ValidationError(
                FieldError("customer_number", f"customer {customer_number!r} does not exist"), backend=self.name
            )
        existing = self.store.invoices.get(invoice.number)
        if existing is not None:
            if _same_content(existing, invoice):
                return self._with_state(existing)  # already present: a resend is not a second invoice
            raise Conflict(
                f"invoice {invoice.number!r} already exists with different content", backend=self.name, status=409
            )
        net, tax = _totals(invoice)
        stored = attrs.evolve(
            _at_scale(invoice),
            customer=None,
            customer_number=customer_number,
            status=_created_status(invoice),
            net_total=net,
            tax_total=tax,
            total=net + tax,
            id=self.store.next_id(),
            raw=to_dict(invoice),
        )
        self.store.invoices[invoice.number] = stored
        return self._with_state(stored)

    async def invoice_pdf(self, number: str) -> bytes:
        invoice = await self.get_invoice(number)
        return minimal_pdf(f"Invoice {invoice.number} total {invoice.total}")

    def _with_state(self, invoice: Invoice) -> Invoice:
        paid = sum((p.amount for p in self.store.payments if p.invoice_number == invoice.number), Decimal(0))
        total = invoice.total or Decimal(0)
        if invoice.status is InvoiceStatus.DRAFT and paid == 0:
            status = InvoiceStatus.DRAFT
        elif total != 0 and abs(paid) >= abs(total):
            status = InvoiceStatus.PAID
        elif paid != 0:
            status = InvoiceStatus.PARTIALLY_PAID
        elif invoice.due_date is not None and invoice.due_date < self.settings.today():
            status = InvoiceStatus.OVERDUE
        else:
            status = InvoiceStatus.OPEN
        return attrs.evolve(invoice, status=status, paid_amount=at_scale(paid, invoice.currency))

    # --- payments ----------------------------------------------------------------------------------------------

    async def list_payments(
        self, *, invoice_number: str | None, since: _dt.date | None, until: _dt.date | None
    ) -> AsyncIterator[Payment]:
        if invoice_number is not None:
            self._key(invoice_number, "invoice_number")
        for payment in list(self.store.payments):
            if invoice_number in (None, payment.invoice_number) and in_window(payment.date, since, until):
                yield payment

    async def create_payment(self, payment: Payment) -> Payment:
        if payment.invoice_number not in self.store.invoices:
            raise ValidationError(
                FieldError("invoice_number", f"invoice {payment.invoice_number!r} does not exist"), backend=self.name
            )
        if payment.kind is not PaymentKind.PAYMENT and not payment.account:
            raise ValidationError(FieldError("account", f"a {payment.kind.value} needs an account"), backend=self.name)
        currency = payment.currency or self.store.invoices[payment.invoice_number].currency
        amount = at_scale(payment.amount, currency)
        stored = attrs.evolve(payment, amount=amount, id=self.store.next_id(), raw=to_dict(payment))
        self.store.payments.append(stored)
        return stored

    # --- bank transactions -------------------------------------------------------------------------------------

    async def list_bank_transactions(
        self, *, account: str | None, since: _dt.date | None, until: _dt.date | None
    ) -> AsyncIterator[BankTransaction]:
        for item in list(self.store.bank_transactions):
            if account in (None, item.account) and in_window(item.date, since, until):
                yield item

    async def submit_bank_transactions(self, transactions: Sequence[BankTransaction]) -> list[BankTransaction]:
        stored = [
            attrs.evolve(t, amount=at_scale(t.amount, t.currency), id=self.store.next_id(), raw=to_dict(t))
            for t in transactions
        ]
        self.store.bank_transactions.extend(stored)
        return stored

    # --- documents ---------------------------------------------------------------------------------------------

    async def upload_document(self, document: Document) -> DocumentRef:
        document_id = self.store.next_id()
        self.store.documents[document_id] = document
        return DocumentRef(id=document_id, filename=document.filename)

    async def list_documents(self) -> AsyncIterator[DocumentRef]:
        for document_id, document in list(self.store.documents.items()):
            yield DocumentRef(id=document_id, filename=document.filename)

    async def get_document(self, document_id: str) -> Document:
        try:
            return self.store.documents[self._key(document_id, "document_id")]
        except KeyError:
            raise NotFound(f"document {document_id!r} not found", backend=self.name, status=404) from None

    async def delete_document(self, document_id: str) -> None:
        if self.store.documents.pop(self._key(document_id, "document_id"), None) is None:
            raise NotFound(f"document {document_id!r} not found", backend=self.name, status=404)

    # --- registrations -----------------------------------------------------------------------------------------

    async def submit_registration(self, registration: Registration) -> RegistrationRef:
        if registration.reference is not None and registration.reference in self.store.registrations:
            first, ref = self.store.registrations[registration.reference]
            if first != registration:
                raise Conflict(
                    f"registration {registration.reference!r} was already submitted with different content",
                    backend=self.name,
                    status=409,
                )
            return ref
        key = registration.reference or f"#{self.store.next_id()}"
        attachment_ids = [(await self.upload_document(doc)).id for doc in registration.attachments]
        ref = RegistrationRef(
            id=self.store.next_id(),
            reference=registration.reference,
            raw={"attachments": attachment_ids},
        )
        self.store.registrations[key] = (registration, ref)
        return ref

    async def find_registration(self, reference: str, *, date: _dt.date | None = None) -> RegistrationRef | None:
        found = self.store.registrations.get(reference)
        return None if found is None else found[1]

    async def list_companies(self) -> list[Company]:
        return [Company(id="1", name=self.settings.company)]

    async def raw(self, method: str, path: str, **kwargs: Any) -> Response:
        """Read-only view of the store: ``GET /customers``, ``/invoices``, ``/payments``, ``/registrations``."""
        collections: dict[str, list[Any]] = {
            "customers": list(self.store.customers.values()),
            "invoices": list(self.store.invoices.values()),
            "payments": list(self.store.payments),
            "bank_transactions": list(self.store.bank_transactions),
            "registrations": [reg for reg, _ref in self.store.registrations.values()],
        }
        name = path.strip("/")
        body: dict[str, Any]
        if method.upper() != "GET" or name not in collections:
            status, body = 404, {"error": f"no such resource: {method.upper()} {path}"}
        else:
            status, body = 200, {"items": [to_dict(item) for item in collections[name]]}
        headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
        return Response(status=status, headers=headers, body=jsoncodec.dumps(body).encode(), backend=self.name)


#: the business key of each model that URL-based backends put into a path
_KEYS: dict[type, str] = {Customer: "number", Invoice: "number", Payment: "invoice_number"}


def _totals(invoice: Invoice) -> tuple[Decimal, Decimal]:
    """Net and tax rounded to the currency's scale per line, half up; with `prices_include_tax` the tax is taken
    out of the gross prices."""
    unit = Decimal(1).scaleb(-scale_of(invoice.currency))
    net = Decimal(0)
    tax = Decimal(0)
    for line in invoice.lines:
        amount = line.net_amount.quantize(unit, ROUND_HALF_UP)
        rate = (line.tax_rate or Decimal(0)) / Decimal(100)
        if invoice.prices_include_tax:
            line_tax = (amount - amount / (1 + rate)).quantize(unit, ROUND_HALF_UP)
            net += amount - line_tax
        else:
            line_tax = (amount * rate).quantize(unit, ROUND_HALF_UP)
            net += amount
        tax += line_tax
    tax += sum((t.amount for t in invoice.tax_lines), Decimal(0))
    return at_scale(net, invoice.currency), at_scale(tax, invoice.currency)


def _at_scale(invoice: Invoice) -> Invoice:
    """The invoice as the real backends hand it back: prices and tax lines at the currency's scale (``150`` →
    ``150.00``), finer digits kept (see `accounting_bridge.money`)."""
    currency = invoice.currency
    lines = [attrs.evolve(line, unit_price=at_scale(line.unit_price, currency)) for line in invoice.lines]
    taxes = [attrs.evolve(t, amount=at_scale(t.amount, currency)) for t in invoice.tax_lines]
    return attrs.evolve(invoice, lines=lines, tax_lines=taxes)


def _created_status(invoice: Invoice) -> InvoiceStatus:
    """The neutral rule: create issues an open invoice unless a draft is asked for."""
    return InvoiceStatus.DRAFT if invoice.status is InvoiceStatus.DRAFT else InvoiceStatus.OPEN


def _same_content(stored: Invoice, new: Invoice) -> bool:
    comparable = attrs.evolve(stored, customer=None, net_total=None, tax_total=None, total=None)
    asked = attrs.evolve(new, customer=None, customer_number=new.customer_key, status=_created_status(new))
    return comparable == asked
