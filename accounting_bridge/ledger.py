"""The neutral interface: `Ledger` with its resource groups, `Capability`, and the `Adapter` protocol.

The ledger checks capabilities (raising `UnsupportedOperation` before any I/O) and runs the adapter's own
validation before it hands a model to the adapter.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import enum
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs

from .errors import FieldError, UnsupportedOperation, ValidationError, ledger_method
from .models import (
    BankTransaction,
    Customer,
    Document,
    DocumentRef,
    Invoice,
    InvoiceStatus,
    Payment,
    Registration,
    RegistrationRef,
)
from .transport.http import Response

__all__ = ["CREATE_STATUSES", "Adapter", "AdapterBase", "Capability", "Company", "Ledger"]

#: what `invoices.create` accepts as `Invoice.status`: None and OPEN issue an open invoice, DRAFT keeps a draft
CREATE_STATUSES = frozenset({None, InvoiceStatus.OPEN, InvoiceStatus.DRAFT})


class Capability(str, enum.Enum):
    CUSTOMERS_LIST = "customers.list"
    CUSTOMERS_GET = "customers.get"
    CUSTOMERS_UPSERT = "customers.upsert"
    INVOICES_LIST = "invoices.list"
    INVOICES_GET = "invoices.get"
    INVOICES_CREATE = "invoices.create"  # issues open invoices (the neutral meaning of create)
    INVOICES_CREATE_DRAFT = "invoices.create_draft"  # create(Invoice(status=InvoiceStatus.DRAFT, ...)) keeps a draft
    INVOICES_PDF = "invoices.pdf"
    INVOICES_CANCEL = "invoices.cancel"  # cancel an issued invoice: it stays, with status CANCELLED
    PAYMENTS_LIST = "payments.list"
    PAYMENTS_CREATE = "payments.create"
    BANK_TRANSACTIONS_LIST = "bank_transactions.list"
    BANK_TRANSACTIONS_SUBMIT = "bank_transactions.submit"
    DOCUMENTS_UPLOAD = "documents.upload"
    DOCUMENTS_LIST = "documents.list"
    DOCUMENTS_GET = "documents.get"
    DOCUMENTS_DELETE = "documents.delete"
    REGISTRATIONS_SUBMIT = "registrations.submit"
    REGISTRATION_LOOKUP = "registrations.find"  # find a submitted registration by its reference
    COMPANIES_LIST = "companies.list"
    RAW = "raw"


@attrs.frozen(kw_only=True)
class Company:
    """A company (books) the credential can reach, for backends where one login sees several."""

    id: str
    name: str
    raw: Any = attrs.field(default=None, eq=False, repr=False)


@runtime_checkable
class Adapter(Protocol):
    """What a backend implements. Built-ins subclass `AdapterBase`; third parties may too.

    An adapter is registered under `name` in the entry-point group ``accounting_bridge.adapters`` and built
    from an instance of `settings_class` (an attrs class, usually a `CommonSettings` subclass).
    """

    name: ClassVar[str]
    settings_class: ClassVar[type[Any]]
    capabilities: ClassVar[frozenset[Capability]]

    async def aclose(self) -> None: ...
    def validate(self, item: object) -> None: ...
    def list_customers(self) -> AsyncIterator[Customer]: ...
    async def get_customer(self, number: str) -> Customer: ...
    async def upsert_customer(self, customer: Customer) -> Customer: ...
    def list_invoices(
        self,
        *,
        status: InvoiceStatus | None,
        since: _dt.date | None,
        until: _dt.date | None,
        customer_number: str | None,
    ) -> AsyncIterator[Invoice]: ...
    async def get_invoice(self, number: str) -> Invoice: ...
    async def create_invoice(self, invoice: Invoice) -> Invoice: ...
    async def invoice_pdf(self, number: str) -> bytes: ...
    async def cancel_invoice(self, number: str) -> Invoice: ...
    def list_payments(
        self, *, invoice_number: str | None, since: _dt.date | None, until: _dt.date | None
    ) -> AsyncIterator[Payment]: ...
    async def create_payment(self, payment: Payment) -> Payment: ...
    def list_bank_transactions(
        self, *, account: str | None, since: _dt.date | None, until: _dt.date | None
    ) -> AsyncIterator[BankTransaction]: ...
    async def submit_bank_transactions(self, transactions: Sequence[BankTransaction]) -> list[BankTransaction]: ...
    async def upload_document(self, document: Document) -> DocumentRef: ...
    def list_documents(self) -> AsyncIterator[DocumentRef]: ...
    async def get_document(self, document_id: str) -> Document: ...
    async def delete_document(self, document_id: str) -> None: ...
    async def submit_registration(self, registration: Registration) -> RegistrationRef: ...
    async def find_registration(
        self, reference: str, *, date: _dt.date | None = None
    ) -> RegistrationRef | None: ...
    async def list_companies(self) -> list[Company]: ...
    async def raw(self, method: str, path: str, **kwargs: Any) -> Response: ...


class AdapterBase:
    """Defaults for every operation: unsupported. Subclasses override what their backend has and list it in
    `capabilities` (the ledger consults the set; these defaults are the second line of defence)."""

    name: ClassVar[str] = "base"
    settings_class: ClassVar[type[Any]]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: the settings a refused credential comes from, named in `AuthenticationError` ("api_key and tenant")
    credential_settings: ClassVar[str | None] = None
    #: True when the backend refuses a wrong credential with 403, not 401 (`PermissionDenied` then names them too)
    credential_refused_with_403: ClassVar[bool] = False

    def _unsupported(self, operation: str) -> UnsupportedOperation:
        return UnsupportedOperation(operation, backend=self.name)

    async def aclose(self) -> None:
        return None

    def validate(self, item: object) -> None:
        """Backend-specific rules (lengths, counts, accounts); raise `ValidationError`. None by default."""

    def list_customers(self) -> AsyncIterator[Customer]:
        raise self._unsupported("customers.list")

    async def get_customer(self, number: str) -> Customer:
        raise self._unsupported("customers.get")

    async def upsert_customer(self, customer: Customer) -> Customer:
        raise self._unsupported("customers.upsert")

    def list_invoices(
        self,
        *,
        status: InvoiceStatus | None,
        since: _dt.date | None,
        until: _dt.date | None,
        customer_number: str | None,
    ) -> AsyncIterator[Invoice]:
        raise self._unsupported("invoices.list")

    async def get_invoice(self, number: str) -> Invoice:
        raise self._unsupported("invoices.get")

    async def create_invoice(self, invoice: Invoice) -> Invoice:
        raise self._unsupported("invoices.create")

    async def invoice_pdf(self, number: str) -> bytes:
        raise self._unsupported("invoices.pdf")

    async def cancel_invoice(self, number: str) -> Invoice:
        raise self._unsupported("invoices.cancel")

    def list_payments(
        self, *, invoice_number: str | None, since: _dt.date | None, until: _dt.date | None
    ) -> AsyncIterator[Payment]:
        raise self._unsupported("payments.list")

    async def create_payment(self, payment: Payment) -> Payment:
        raise self._unsupported("payments.create")

    def list_bank_transactions(
        self, *, account: str | None, since: _dt.date | None, until: _dt.date | None
    ) -> AsyncIterator[BankTransaction]:
        raise self._unsupported("bank_transactions.list")

    async def submit_bank_transactions(self, transactions: Sequence[BankTransaction]) -> list[BankTransaction]:
        raise self._unsupported("bank_transactions.submit")

    async def upload_document(self, document: Document) -> DocumentRef:
        raise self._unsupported("documents.upload")

    def list_documents(self) -> AsyncIterator[DocumentRef]:
        raise self._unsupported("documents.list")

    async def get_document(self, document_id: str) -> Document:
        raise self._unsupported("documents.get")

    async def delete_document(self, document_id: str) -> None:
        raise self._unsupported("documents.delete")

    async def submit_registration(self, registration: Registration) -> RegistrationRef:
        raise self._unsupported("registrations.submit")

    async def find_registration(self, reference: str, *, date: _dt.date | None = None) -> RegistrationRef | None:
        raise self._unsupported("registrations.find")

    async def list_companies(self) -> list[Company]:
        raise self._unsupported("companies.list")

    async def raw(self, method: str, path: str, **kwargs: Any) -> Response:
        raise self._unsupported("raw")


def _expect(item: object, cls: type[Any], argument: str) -> None:
    if not isinstance(item, cls):
        raise ValidationError(FieldError(argument, f"must be a {cls.__name__}, not {type(item).__name__}"))


class _Group:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._adapter = ledger.adapter

    def _require(self, capability: Capability) -> None:
        self._ledger.require(capability)

    def _validate(self, item: object) -> None:
        try:
            self._adapter.validate(item)
        except ValidationError as exc:
            if exc.backend is None:
                exc.backend = self._ledger.backend
            raise


class Customers(_Group):
    def list(self) -> AsyncIterator[Customer]:
        self._require(Capability.CUSTOMERS_LIST)
        return self._adapter.list_customers()

    async def get(self, number: str) -> Customer:
        self._require(Capability.CUSTOMERS_GET)
        return await self._adapter.get_customer(number)

    async def upsert(self, customer: Customer) -> Customer:
        self._require(Capability.CUSTOMERS_UPSERT)
        _expect(customer, Customer, "customer")
        self._validate(customer)
        return await self._adapter.upsert_customer(customer)


class Invoices(_Group):
    def list(
        self,
        *,
        status: InvoiceStatus | None = None,
        since: _dt.date | None = None,
        until: _dt.date | None = None,
        customer_number: str | None = None,
    ) -> AsyncIterator[Invoice]:
        self._require(Capability.INVOICES_LIST)
        if since is not None and until is not None and since > until:
            raise ValidationError(FieldError("since", f"{since} is after until {until}"))
        return self._adapter.list_invoices(status=status, since=since, until=until, customer_number=customer_number)

    async def get(self, number: str) -> Invoice:
        self._require(Capability.INVOICES_GET)
        return await self._adapter.get_invoice(number)

    async def create(self, invoice: Invoice) -> Invoice:
        """Issue an open invoice, or keep a draft when `invoice.status` is `InvoiceStatus.DRAFT` (where the backend
        has drafts: `Capability.INVOICES_CREATE_DRAFT`). Any other status is a `ValidationError`."""
        _expect(invoice, Invoice, "invoice")
        self._require_create(invoice.status)
        self._validate(invoice)
        return await self._adapter.create_invoice(invoice)

    def _require_create(self, status: InvoiceStatus | None) -> None:
        if status is not None and status not in CREATE_STATUSES:
            allowed = "None (= open), InvoiceStatus.OPEN or InvoiceStatus.DRAFT"
            raise ValidationError(
                FieldError("status", f"an invoice cannot be created as InvoiceStatus.{status.name}; use {allowed}"),
                backend=self._ledger.backend,
                model="Invoice",
            )
        draft = status is InvoiceStatus.DRAFT
        needed = Capability.INVOICES_CREATE_DRAFT if draft else Capability.INVOICES_CREATE
        if self._ledger.supports(needed):
            return
        if draft and self._ledger.supports(Capability.INVOICES_CREATE):
            reason = "it has no drafts; create issues an open invoice (leave status None)"
        elif not draft and self._ledger.supports(Capability.INVOICES_CREATE_DRAFT):
            reason = "it creates drafts only; pass status=InvoiceStatus.DRAFT"
        else:
            reason = None
        if reason is not None:
            reason += "; `ledger.capabilities` tells in advance (Capability.INVOICES_CREATE / INVOICES_CREATE_DRAFT)"
        raise UnsupportedOperation(
            needed.value, backend=self._ledger.backend, method="ledger.invoices.create()", reason=reason
        )

    async def pdf(self, number: str) -> bytes:
        self._require(Capability.INVOICES_PDF)
        return await self._adapter.invoice_pdf(number)

    async def cancel(self, number: str) -> Invoice:
        """Cancel the invoice `number` where the backend can (`Capability.INVOICES_CANCEL`): it stays, with
        status CANCELLED. Cancelling a cancelled invoice again is no error."""
        self._require(Capability.INVOICES_CANCEL)
        return await self._adapter.cancel_invoice(number)


class Payments(_Group):
    def list(
        self, *, invoice_number: str | None = None, since: _dt.date | None = None, until: _dt.date | None = None
    ) -> AsyncIterator[Payment]:
        self._require(Capability.PAYMENTS_LIST)
        return self._adapter.list_payments(invoice_number=invoice_number, since=since, until=until)

    async def create(self, payment: Payment) -> Payment:
        self._require(Capability.PAYMENTS_CREATE)
        _expect(payment, Payment, "payment")
        self._validate(payment)
        return await self._adapter.create_payment(payment)


class BankTransactions(_Group):
    def list(
        self, *, account: str | None = None, since: _dt.date | None = None, until: _dt.date | None = None
    ) -> AsyncIterator[BankTransaction]:
        self._require(Capability.BANK_TRANSACTIONS_LIST)
        if since is not None and until is not None and since > until:
            raise ValidationError(FieldError("since", f"{since} is after until {until}"))
        return self._adapter.list_bank_transactions(account=account, since=since, until=until)

    async def submit(self, transactions: Sequence[BankTransaction]) -> builtins.list[BankTransaction]:
        self._require(Capability.BANK_TRANSACTIONS_SUBMIT)
        items = list(transactions)
        for index, item in enumerate(items):
            _expect(item, BankTransaction, f"transactions[{index}]")
            try:
                self._validate(item)
            except ValidationError as exc:
                raise exc.prefixed(f"transactions[{index}]") from None
        return await self._adapter.submit_bank_transactions(items)


class Documents(_Group):
    async def upload(self, document: Document) -> DocumentRef:
        self._require(Capability.DOCUMENTS_UPLOAD)
        _expect(document, Document, "document")
        self._validate(document)
        return await self._adapter.upload_document(document)

    def list(self) -> AsyncIterator[DocumentRef]:
        self._require(Capability.DOCUMENTS_LIST)
        return self._adapter.list_documents()

    async def get(self, document_id: str) -> Document:
        self._require(Capability.DOCUMENTS_GET)
        return await self._adapter.get_document(document_id)

    async def delete(self, document_id: str) -> None:
        self._require(Capability.DOCUMENTS_DELETE)
        await self._adapter.delete_document(document_id)


class Registrations(_Group):
    async def submit(self, registration: Registration) -> RegistrationRef:
        """Book a journal entry. With a `reference`, where the backend can find entries by it
        (`Capability.REGISTRATION_LOOKUP`), a repeated submit with the same content returns the existing entry and
        different content is `Conflict`; elsewhere the reference is only carried along (a resend books again)."""
        self._require(Capability.REGISTRATIONS_SUBMIT)
        _expect(registration, Registration, "registration")
        self._validate(registration)
        return await self._adapter.submit_registration(registration)

    async def find(self, reference: str, *, date: _dt.date | None = None) -> RegistrationRef | None:
        """The registration submitted with `reference`, or None when the backend has none. `date` (the entry's
        booking date, when known) helps backends that search by date (Run my Accounts searches around it, by
        default around today)."""
        self._require(Capability.REGISTRATION_LOOKUP)
        if not isinstance(reference, str) or not reference:
            raise ValidationError(FieldError("reference", "must be a non-empty str"))
        if date is not None and (not isinstance(date, _dt.date) or isinstance(date, _dt.datetime)):
            raise ValidationError(FieldError("date", "must be a datetime.date"))
        return await self._adapter.find_registration(reference, date=date)


class Ledger:
    """One connection to one set of books. Use as ``async with ab.connect(...) as ledger``."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.customers = Customers(self)
        self.invoices = Invoices(self)
        self.payments = Payments(self)
        self.bank_transactions = BankTransactions(self)
        self.documents = Documents(self)
        self.registrations = Registrations(self)

    def __repr__(self) -> str:
        return f"<Ledger backend={self.backend!r}>"

    @property
    def backend(self) -> str:
        return self.adapter.name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.adapter.capabilities

    def supports(self, capability: Capability) -> bool:
        return capability in self.adapter.capabilities

    def require(self, capability: Capability) -> None:
        if capability not in self.adapter.capabilities:
            raise UnsupportedOperation(capability.value, backend=self.backend, method=ledger_method(capability.value))

    async def companies(self) -> list[Company]:
        self.require(Capability.COMPANIES_LIST)
        return await self.adapter.list_companies()

    async def raw(self, method: str, path: str, **kwargs: Any) -> Response:
        """Any request through the same transport (auth, retries, limits): for what the neutral API lacks."""
        self.require(Capability.RAW)
        return await self.adapter.raw(method, path, **kwargs)

    async def aclose(self) -> None:
        await self.adapter.aclose()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
