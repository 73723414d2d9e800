"""The `runmyaccounts` adapter: the neutral Ledger operations over the Run my Accounts REST API, plus typed
adapter-specific methods for the resources the neutral interface has no place for.

Everything goes through the core `Transport` (auth, retries, redaction, logging). Request and response bodies
are built and read by the pure `wire` / `records` modules; what is inferred lives in `inferred`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import attrs

from accounting_bridge import safety
from accounting_bridge.errors import (
    AccountingError,
    ConfigurationError,
    Conflict,
    FieldError,
    NotFound,
    ResponseError,
    Unprocessable,
    UnsupportedOperation,
    ValidationError,
    WriteOutcomeUnknown,
)
from accounting_bridge.filters import in_window
from accounting_bridge.http_adapter import HttpAdapter
from accounting_bridge.ledger import Capability
from accounting_bridge.models import (
    BankTransaction,
    Customer,
    Document,
    DocumentRef,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentKind,
    Registration,
    RegistrationRef,
    received_from_backend,
)
from accounting_bridge.outcomes import read_back
from accounting_bridge.settings import CommonSettings, secret_field
from accounting_bridge.transport.auth import ApiKeyHeader, ApiKeyQuery, AuthStrategy
from accounting_bridge.transport.http import ErrorInfo, FilePart, Request, Response, Transport

from . import inferred, wire
from .records import (
    AccountTransaction,
    Beleg,
    Chart,
    Department,
    Part,
    Payable,
    Project,
    SaldoRow,
    Vendor,
    account_transactions,
    decode_list,
    saldo_rows,
)

__all__ = ["DEFAULT_BASE_URL", "SANDBOX_BASE_URL", "RunMyAccountsAdapter", "RunMyAccountsSettings"]

DEFAULT_BASE_URL = "https://service.runmyaccounts.com/api/latest/clients/"
#: Run my Accounts' own test host (tenants provisioned by their staff); the local fake is `sandbox.RmaSandbox`.
SANDBOX_BASE_URL = "https://service.int.runmyaccounts.com/api/latest/clients/"

logger = logging.getLogger("accounting_bridge")

T = TypeVar("T")

_AUTH_MODES = ("query", "bearer", "header")
_FORMATS = ("json", "xml")


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ConfigurationError(f"setting {attribute.name!r} must be one of {', '.join(choices)}")

    return check


def _required_text(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"setting {attribute.name!r} must be non-empty text")


def _header_setting(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    safety.setting_header_value(value, attribute.name)


def _path_setting(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    safety.setting_path_segment(value, attribute.name)


def _non_negative_days(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3660:
        raise ConfigurationError(f"setting {attribute.name!r} must be a whole number of days from 0 to 3660")


def _a_bool(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"setting {attribute.name!r} must be true or false")


def _account_tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


@attrs.frozen(kw_only=True)
class RunMyAccountsSettings(CommonSettings):
    """Settings of `ab.connect("runmyaccounts", ...)`.

    Account numbers are per-tenant chart configuration: the seed's use-case table (Skonto 3900, Rabatt 3901,
    Bankspesen 6840) and the documentation examples (3800, 3801, 6940) disagree; the defaults follow the examples.
    """

    tenant: str = attrs.field(validator=_path_setting)  # the "mandant" in the URL
    api_key: str = secret_field(validator=[_required_text, _header_setting])  # may be sent as a header
    auth: str = attrs.field(default="query", validator=_one_of(_AUTH_MODES))  # ?api_key= | Bearer | X-RMA-KEY
    wire_format: str = attrs.field(default="json", validator=_one_of(_FORMATS))
    receivables_account: str = "1100"
    payables_account: str = "2000"
    clearing_account: str = "1090"  # transfer account: where incoming payments are booked
    discount_account: str = "3801"  # Rabatt / Preisnachlass
    cash_discount_account: str = "3800"  # Skonto
    bank_fees_account: str = "6940"  # Bank-/PC-Spesen
    write_off_account: str | None = None
    rounding_account: str | None = None
    akonto_account: str = "2030"  # advance payments received (Akonto)
    #: Accounts payments must never be booked to; None = infer from the chart (see `inferred.is_bank_account`).
    bank_accounts: tuple[str, ...] | None = attrs.field(default=None, converter=_account_tuple)
    allow_bank_account_payments: bool = False
    #: How far around a registration's date (and around today, for `registrations.find`) GL entries are looked
    #: up by reference: RMA lists ledger lines by date only.
    registration_lookup_days: int = attrs.field(default=31, validator=_non_negative_days)
    #: Create invoices write-first, trusting RMA to refuse a number that exists (see `inferred` rule 6).
    invoice_write_first: bool = attrs.field(default=inferred.INVOICE_WRITE_FIRST, validator=_a_bool)


def _auth(settings: RunMyAccountsSettings) -> AuthStrategy:
    if settings.auth == "bearer":
        return ApiKeyHeader(settings.api_key)
    if settings.auth == "header":
        return ApiKeyHeader(settings.api_key, header="X-RMA-KEY", prefix="")
    return ApiKeyQuery(settings.api_key)


def _error_info(response: Response) -> ErrorInfo:
    try:
        detail, message = wire.read_answer(response.body, response.content_type)
    except ResponseError:
        detail, message = None, None
    if message is None:
        message = response.text()[:300].strip() if response.content_type.startswith("text/") else ""
    return ErrorInfo(message or f"HTTP {response.status}", detail)


class RunMyAccountsAdapter(HttpAdapter):
    name: ClassVar[str] = "runmyaccounts"
    credential_settings: ClassVar[str | None] = "api_key and tenant, and auth = query | bearer | header"
    credential_refused_with_403: ClassVar[bool] = True  # RMA answers a wrong key or mandant with 403
    settings_class: ClassVar[type[Any]] = RunMyAccountsSettings
    #: the local sandbox server, imported only by `accounting_bridge.sandbox.create`
    sandbox: ClassVar[str] = "accounting_bridge.adapters.runmyaccounts.sandbox:RmaSandbox"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.CUSTOMERS_LIST,
            Capability.CUSTOMERS_GET,
            Capability.CUSTOMERS_UPSERT,
            Capability.INVOICES_LIST,
            Capability.INVOICES_GET,
            Capability.INVOICES_CREATE,
            Capability.INVOICES_PDF,
            Capability.PAYMENTS_LIST,
            Capability.PAYMENTS_CREATE,
            Capability.BANK_TRANSACTIONS_LIST,
            Capability.DOCUMENTS_UPLOAD,
            Capability.REGISTRATIONS_SUBMIT,
            Capability.REGISTRATION_LOOKUP,
            Capability.RAW,
        }
    )

    def __init__(self, settings: RunMyAccountsSettings) -> None:
        if not isinstance(settings, RunMyAccountsSettings):  # pragma: no cover - the registry builds it
            raise ConfigurationError("RunMyAccountsAdapter needs RunMyAccountsSettings", backend=self.name)
        self.settings = settings
        accept = "application/json" if settings.wire_format == "json" else "application/xml"
        config = settings.transport_config(self.name, DEFAULT_BASE_URL, default_headers={"Accept": accept})
        self.transport = Transport(
            config,
            auth=_auth(settings),
            session=settings.session,
            error_info=_error_info,
        )
        self._charts: dict[str, Chart] | None = None
        #: True when the last `create_invoice` found the invoice already present with the same content.
        self.last_create_was_present = False
        #: one GL submit per reference at a time in this ledger: a concurrent repeat then finds the first entry
        self._entries_in_flight: dict[str, tuple[asyncio.Lock, int]] = {}

    def __repr__(self) -> str:
        return f"RunMyAccountsAdapter(tenant={self.settings.tenant!r}, wire_format={self.settings.wire_format!r})"

    # --- plumbing --------------------------------------------------------------------------------------------

    def _resource(self, resource: str, *keys: str, field: str = "number") -> str:
        """`resource` may contain slashes (``gl/v2/saldo``); `keys` are caller values (named `field` in an error),
        each one path segment: ``.``, ``..``, separators and control characters are refused before any I/O."""
        segments = (safety.path_segment(k, field, backend=self.name) for k in keys)
        return "/".join((quote(self.settings.tenant, safe=""), resource, *segments))

    def _check_body(self, response: Response) -> Any:
        """Decode a 2xx body; an ``error`` in it is a failure even with 2xx (German text kept)."""
        if not response.body.strip():
            return None
        try:
            tree, message = wire.read_answer(response.body, response.content_type)  # one parse for both
        except ResponseError as exc:
            exc.status = response.status
            exc.request_id = response.request_id
            raise
        if message:
            raise Unprocessable(
                self.transport.redactor.text(message),
                backend=self.name,
                status=response.status,
                request_id=response.request_id,
                detail={"error": message},
            )
        return tree

    async def _get(
        self, resource: str, *keys: str, params: Mapping[str, str] | None = None, field: str = "number"
    ) -> Any:
        path = self._resource(resource, *keys, field=field)
        response = await self.transport.send(
            Request("GET", path, params={k: v for k, v in (params or {}).items() if v})
        )
        return self._check_body(response)

    def _body(self, root: str, tree: Any) -> tuple[bytes, dict[str, str]]:
        if self.settings.wire_format == "json":
            return wire.json_bytes(tree), {"Content-Type": "application/json"}
        return wire.render_xml(root, tree), {"Content-Type": "application/xml"}

    async def _post(
        self,
        resource: str,
        *keys: str,
        root: str,
        tree: Any,
        reference: str | None = None,
        idempotent: bool | None = None,
        lookup: Any = None,
    ) -> tuple[Response, Any]:
        body, headers = self._body(root, tree)
        request = Request(
            "POST",
            self._resource(resource, *keys),
            body=body,
            headers=headers,
            reference=reference,
            idempotent=idempotent,
        )
        response = await self.transport.send(request, lookup=lookup)
        return response, self._written_body(response, root)

    # --- the outcome of a write that landed --------------------------------------------------------------------

    def _written_body(self, response: Response, what: str) -> Any:
        """The decoded answer to a write RMA accepted (2xx); None when there is none (also when a lookup confirmed
        the write) or when it cannot be read. An ``error`` in the body is still a refusal (`Unprocessable`), but an
        unreadable answer is not a failure: the write landed, so the caller reads its result back instead."""
        if response.confirmed_by_lookup:
            return None
        try:
            return self._check_body(response)
        except ResponseError as exc:
            logger.warning(
                "%s: %s accepted (HTTP %s) but its answer could not be read (%s): counted as landed",
                self.name, what, response.status, self.transport.redactor.text(exc.message),
            )  # fmt: skip
            return None

    async def _read_back(
        self,
        what: str,
        reference: str | None,
        read: Callable[[], Awaitable[T | None]],
        *,
        if_absent: AccountingError | None = None,
    ) -> T:
        """`read()` after a write that landed (or may have): the result; when it finds nothing, `if_absent` (a
        write that was refused and is absent indeed) or else `WriteOutcomeUnknown` naming `reference`. A failing
        read-back is `WriteOutcomeUnknown` too: it must never look like a failure of the write itself."""
        return await read_back(
            read, lambda problem: self._unknown_after_write(what, reference, problem), if_absent=if_absent
        )

    def _unknown_after_write(self, what: str, reference: str | None, problem: str) -> WriteOutcomeUnknown:
        return WriteOutcomeUnknown(
            f"{what}: the write was sent and may have landed (the backend accepted it, or it may have been "
            f"performed), but its result could not be read back ({problem}); look it up by its reference before "
            "sending it again",
            backend=self.name,
            reference=reference,
        )

    async def _binary(self, resource: str, *keys: str, accept: str, params: Mapping[str, str]) -> Response:
        request = Request(
            "GET",
            self._resource(resource, *keys),
            params={k: v for k, v in params.items() if v},
            headers={"Accept": accept},
        )
        response = await self.transport.send(request)
        if response.content_type != accept:
            message = wire.error_text(response.body, response.content_type)
            raise (Unprocessable if message else ResponseError)(
                self.transport.redactor.text(message or f"expected {accept}, got {response.content_type or 'nothing'}"),
                backend=self.name,
                status=response.status,
                request_id=response.request_id,
            )
        return response

    # --- validation (no I/O) ---------------------------------------------------------------------------------

    def validate(self, item: object) -> None:
        errors: list[FieldError] = _path_key_errors(item)
        if isinstance(item, Customer):
            errors += _lengths(
                item,
                {"number": 32, "name": 64, "phone": 20, "vat_number": 32, "iban": 34, "bic": 11, "language": 6},
            )
            if item.address is not None:
                limits = {"street": 32, "street2": 32, "postcode": 10, "city": 32}
                errors += [FieldError(f"address.{e.path}", e.message) for e in _lengths(item.address, limits)]
        elif isinstance(item, Invoice):
            errors += wire.check_invoice(item)
            if item.customer is not None:
                try:
                    self.validate(item.customer)
                except ValidationError as exc:
                    errors += exc.prefixed("customer").errors
        elif isinstance(item, Payment):
            try:
                self._payment_account(item)
            except ValidationError as exc:
                errors += exc.errors
            if wire.finer_than_cents(item.amount):
                errors.append(FieldError("amount", wire.FINER_THAN_CENTS))
        elif isinstance(item, Document):
            if item.content_type.lower() not in wire.BELEG_TYPES:
                errors.append(FieldError("content_type", "Run my Accounts accepts pdf, png, jpg, jpeg and gif only"))
            if len(item.content) > wire.BELEG_MAX_BYTES:
                errors.append(FieldError("content", "larger than 25 MB"))
        elif isinstance(item, Registration):
            for index, line in enumerate(item.lines):
                if wire.finer_than_cents(line.amount):
                    errors.append(FieldError(f"lines[{index}].amount", wire.FINER_THAN_CENTS))
            for index, doc in enumerate(item.attachments):
                try:
                    self.validate(doc)
                except ValidationError as exc:
                    errors += exc.prefixed(f"attachments[{index}]").errors
        if errors:
            raise ValidationError(errors, backend=self.name, model=type(item).__name__)

    # --- customers -------------------------------------------------------------------------------------------

    async def list_customers(self) -> AsyncIterator[Customer]:
        for tree in wire.items(await self._get("customers"), "customer"):
            yield wire.decode_customer(tree)

    async def get_customer(self, number: str) -> Customer:
        tree = await self._get("customers", number)
        if not isinstance(tree, Mapping) or not tree:
            raise NotFound(f"customer {number!r} not found", backend=self.name, status=404)
        return wire.decode_customer(tree)

    async def upsert_customer(self, customer: Customer) -> Customer:
        """E1/E2: create or overwrite (RMA replaces the stored record with what is sent, so it is complete)."""
        # The same complete record sent twice has the same effect: safe to repeat after an ambiguous failure.
        await self._post("customers", root="customer", tree=wire.encode_customer(customer), idempotent=True)
        return await self._read_back(
            f"customer {customer.number!r}", customer.number, lambda: self.get_customer(customer.number)
        )

    # --- invoices --------------------------------------------------------------------------------------------

    async def list_invoices(
        self,
        *,
        status: InvoiceStatus | None = None,
        since: _dt.date | None = None,
        until: _dt.date | None = None,
        customer_number: str | None = None,
    ) -> AsyncIterator[Invoice]:
        if status is not None and status not in wire.STATUS_QUERY:
            return  # drafts and cancelled invoices do not exist in Run my Accounts' API
        params = {
            "status": wire.STATUS_QUERY[status] if status is not None else "",
            "from": since.isoformat() if since else "",
            "to": until.isoformat() if until else "",
            "customer_number": customer_number or "",
        }
        for tree in wire.items(await self._get("invoices", params=params), "invoice"):
            invoice = wire.decode_invoice(tree)
            if status is not None and invoice.status is not status:
                continue  # status=OPEN also returns OVERDUE and partially paid ones
            yield invoice

    async def get_invoice(self, number: str) -> Invoice:
        tree = await self._get("invoices", number)
        if not isinstance(tree, Mapping) or not tree:
            raise NotFound(f"invoice {number!r} not found", backend=self.name, status=404)
        return wire.decode_invoice(tree)

    async def _invoice_tree(self, number: str) -> Mapping[str, Any] | None:
        try:
            tree = await self._get("invoices", number)
        except NotFound:
            return None
        return tree if isinstance(tree, Mapping) and tree else None

    async def _stored_invoice(self, number: str) -> tuple[Mapping[str, Any], Invoice] | None:
        tree = await self._invoice_tree(number)
        return None if tree is None else (tree, wire.decode_invoice(tree))

    async def create_invoice(self, invoice: Invoice, *, extra: Mapping[str, Any] | None = None) -> Invoice:
        """Create an invoice or credit note, idempotently by its number.

        Already present with the same content (everything sent that RMA stores, see `wire.invoice_differences`):
        returned as is (`last_create_was_present` is set); with different content: `Conflict`. After an ambiguous
        failure (dropped connection, 5xx) the transport looks the number up before anything is resent, so a lost
        answer never produces a duplicate. Once the POST may have landed, a failing read-back — or, after a lost
        answer, a stored invoice that differs — is `WriteOutcomeUnknown(reference=invoice.number)`, never the read's
        own error nor `Conflict`.

        The number is looked up before the POST unless the setting `invoice_write_first` trusts RMA to refuse a
        number that exists (`inferred` rule 6): then a refusal is judged by the stored invoice's content instead.
        Either way concurrent creates of one number end with one invoice: the same content is the existing
        record, different content `Conflict`.
        """
        tree = wire.encode_invoice(invoice, ar_accno=self.settings.receivables_account, extra=extra)
        what = f"invoice {invoice.number!r}"
        self.last_create_was_present = False
        if not self.settings.invoice_write_first:
            existing = await self._invoice_tree(invoice.number)
            if existing is not None:
                return self._already_present(invoice.number, tree, existing)

        async def exists() -> bool:
            return await self._invoice_tree(invoice.number) is not None

        try:
            response, _body = await self._post(
                "invoices", root="invoice", tree=tree, reference=invoice.number, lookup=exists
            )
        except Unprocessable as exc:
            # Refused because the number exists by now (someone else's, or our own earlier attempt)? Judge by content.
            found = await self._read_back(
                what, invoice.number, lambda: self._invoice_tree(invoice.number), if_absent=exc
            )
            return self._already_present(invoice.number, tree, found, cause=exc)
        stored_tree, stored = await self._read_back(what, invoice.number, lambda: self._stored_invoice(invoice.number))
        if response.confirmed_by_lookup:  # the lookup saw *an* invoice with this number: ours only if it matches
            self._check_landed(invoice.number, tree, stored_tree)
        return stored

    def _check_landed(self, number: str, sent: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
        """After a lost answer a lookup found an invoice with our number. Matching, it is ours; not matching, it
        may be someone else's or ours as the backend reshaped it: unknown, never `Conflict` (a definite failure)."""
        differences = wire.invoice_differences(sent, stored)
        if differences:
            raise WriteOutcomeUnknown(
                f"invoice {number!r}: the answer to the create was lost and an invoice with this number exists, but "
                f"with other content ({', '.join(differences)}): it may be another invoice or ours as the backend "
                "stored it; look it up before sending it again",
                backend=self.name,
                reference=number,
            )

    def _check_same(
        self, number: str, sent: Mapping[str, Any], stored: Mapping[str, Any], cause: Exception | None = None
    ) -> None:
        differences = wire.invoice_differences(sent, stored)
        if differences:
            raise Conflict(
                f"invoice {number!r} already exists with different content ({', '.join(differences)})",
                backend=self.name,
                status=409,
            ) from cause

    def _already_present(
        self, number: str, sent: Mapping[str, Any], existing: Mapping[str, Any], cause: Exception | None = None
    ) -> Invoice:
        self._check_same(number, sent, existing, cause)
        self.last_create_was_present = True
        return wire.decode_invoice(existing)

    async def invoice_pdf(self, number: str, *, formname: str = "invoice", language_code: str | None = None) -> bytes:
        params = {"formname": formname, "language_code": language_code or ""}
        return (await self._binary("invoices", number, "pdf", accept="application/pdf", params=params)).body

    async def invoice_html(self, number: str, *, formname: str = "invoice", language_code: str | None = None) -> str:
        params = {"formname": formname, "language_code": language_code or ""}
        return (await self._binary("invoices", number, "html", accept="text/html", params=params)).text()

    async def delete_invoice(self, number: str) -> None:
        """C1: refused. Run my Accounts has no deletion; book a storno (counter-document) or a credit note."""
        raise UnsupportedOperation(
            "invoices.delete",
            backend=self.name,
            method="ledger.adapter.delete_invoice()",
            reason=(
                f"invoice {number!r} cannot be deleted: a properly kept ledger does not delete invoices (use case "
                "C1). Book a storno with the same date and negated amounts (recipes.storno_of / book_storno) or a "
                "credit note with today's date instead"
            ),
        )

    # --- payments --------------------------------------------------------------------------------------------

    def _kinds(self) -> dict[str, PaymentKind]:
        s = self.settings
        kinds = {
            s.discount_account: PaymentKind.DISCOUNT,
            s.cash_discount_account: PaymentKind.CASH_DISCOUNT,
            s.bank_fees_account: PaymentKind.BANK_FEE,
        }
        if s.write_off_account:
            kinds[s.write_off_account] = PaymentKind.WRITE_OFF
        if s.rounding_account:
            kinds[s.rounding_account] = PaymentKind.ROUNDING
        return kinds

    def _payment_account(self, payment: Payment) -> str:
        s = self.settings
        default = {
            PaymentKind.PAYMENT: s.clearing_account,
            PaymentKind.DISCOUNT: s.discount_account,
            PaymentKind.CASH_DISCOUNT: s.cash_discount_account,
            PaymentKind.BANK_FEE: s.bank_fees_account,
            PaymentKind.WRITE_OFF: s.write_off_account,
            PaymentKind.ROUNDING: s.rounding_account,
        }[payment.kind]
        account = payment.account or default
        if not account:
            raise ValidationError(
                FieldError("account", f"a {payment.kind.value} needs an account (none given or configured)"),
                backend=self.name,
            )
        if s.bank_accounts is not None and not s.allow_bank_account_payments and account in s.bank_accounts:
            raise self._bank_refusal(account)
        return account

    def _bank_refusal(self, account: str) -> ValidationError:
        return ValidationError(
            FieldError(
                "account",
                f"{account} is a bank account. Run my Accounts books bank accounts itself: incoming payments must be "
                f"posted to the clearing/transfer account ({self.settings.clearing_account}), never directly to a "
                "bank account. Set allow_bank_account_payments=True only if your booking concept allows it",
            ),
            backend=self.name,
            model="Payment",
        )

    async def charts(self, *, refresh: bool = False) -> dict[str, Chart]:
        """The chart of accounts by number (cached per ledger)."""
        if self._charts is None or refresh:
            self._charts = {c.accno: c for c in await self.list_charts()}
        return self._charts

    async def _check_bank_rule(self, account: str) -> None:
        s = self.settings
        if s.allow_bank_account_payments or s.bank_accounts is not None:
            return  # explicit list already checked in validate()
        chart = (await self.charts()).get(account)
        if inferred.is_bank_account(chart, account):
            raise self._bank_refusal(account)

    async def create_payment(self, payment: Payment) -> Payment:
        """D1-D5: a payment or a deduction (Skonto, discount, bank fees booked as an extra payment line)."""
        return await self._create_payment("invoices", payment)

    async def _create_payment(self, resource: str, payment: Payment) -> Payment:
        self.validate(payment)  # also for the adapter-specific payable payments (the Ledger validates the others)
        account = self._payment_account(payment)
        await self._check_bank_rule(account)
        tree = wire.encode_payment(payment, account=account)
        key = (payment.date, payment.amount, account, payment.reference or "")

        def matching(items: list[Payment]) -> int:
            return sum(1 for p in items if (p.date, p.amount, p.account, p.reference or "") == key)

        before = matching(await self._payments_of(resource, payment.invoice_number))

        async def landed() -> bool:
            return matching(await self._payments_of(resource, payment.invoice_number)) > before

        _response, body = await self._post(
            resource, payment.invoice_number, "payments", root="payment", tree=tree,
            reference=payment.invoice_number, lookup=landed,
        )  # fmt: skip

        async def booked() -> Payment | None:
            if isinstance(body, Mapping) and body:  # the answer names the payment; else find it in the list
                with contextlib.suppress(ResponseError):
                    return wire.decode_payment(body, invoice_number=payment.invoice_number, kinds=self._kinds())
            found = [p for p in await self._payments_of(resource, payment.invoice_number) if matching([p])]
            return found[-1] if found else None

        return await self._read_back(f"payment to {payment.invoice_number!r}", payment.invoice_number, booked)

    async def _payments_of(self, resource: str, number: str) -> list[Payment]:
        tree = await self._get(resource, number, "payments")
        return [wire.decode_payment(t, invoice_number=number, kinds=self._kinds()) for t in wire.items(tree, "payment")]

    async def list_payments(
        self, *, invoice_number: str | None = None, since: _dt.date | None = None, until: _dt.date | None = None
    ) -> AsyncIterator[Payment]:
        if invoice_number is not None:
            safety.path_segment(invoice_number, "invoice_number", backend=self.name)
            payments = await self._payments_of("invoices", invoice_number)
        else:
            payments = await self.payment_list(processed=inferred.PAYMENT_LIST_ALL)
        for payment in payments:
            if in_window(payment.date, since, until):
                yield payment

    async def payment_list(self, *, processed: str | _dt.datetime | None = None) -> list[Payment]:
        """`GET invoices/payment_list`: payments not marked processed (by this api key) after `processed`.
        Each payment's `raw["flag"]` carries the per-key state (``NEW``)."""
        stamp = processed.strftime("%Y-%m-%dT%H:%M") if isinstance(processed, _dt.datetime) else processed
        tree = await self._get("invoices/payment_list", params={"processed": stamp or ""})
        return [wire.decode_payment(t, kinds=self._kinds()) for t in wire.items(tree, "payment")]

    async def set_as_processed(self, payment_ids: Sequence[str]) -> None:
        """`POST invoices/set_as_processed` (form-encoded, repeated ``id``): marks payments for this api key."""
        if not payment_ids:
            return
        request = Request(
            "POST",
            self._resource("invoices/set_as_processed"),
            body=wire.processed_form(payment_ids),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            idempotent=True,  # marking twice is the same as once
        )
        self._written_body(await self.transport.send(request), "set_as_processed")

    # --- bank transactions (ledger lines of a bank account) ----------------------------------------------------

    async def list_bank_transactions(
        self, *, account: str | None = None, since: _dt.date | None = None, until: _dt.date | None = None
    ) -> AsyncIterator[BankTransaction]:
        """The booked lines of a (bank) account from `/charts/{accno}/transactions`, money in as + (a debit of
        the bank account, see `account_transactions`). Run my Accounts has no bank-statement import: submitting is
        unsupported."""
        if not account:
            raise ValidationError(FieldError("account", "Run my Accounts needs the account number"), backend=self.name)
        safety.path_segment(account, "account", backend=self.name)
        for line in await self.account_transactions(account, since=since, until=until):
            with received_from_backend():
                transaction = BankTransaction(
                    account=line.accno,
                    date=line.date,
                    amount=line.amount,
                    text=line.description or line.memo,
                    reference=line.reference,
                    id=line.id,
                    raw=line.raw,
                )
            yield transaction

    # --- documents (belege) ----------------------------------------------------------------------------------

    async def upload_beleg(self, document: Document, *, comment: str | None = None) -> Beleg:
        """`POST belege` (multipart ``Filedata`` + ``comment``). RMA refuses a file it already has (same CRC32)
        with 409: on the first attempt that is `Conflict` (the document was uploaded before).

        RMA's duplicate check makes a resend safe, so the transport resends after an ambiguous failure (answer
        lost, 5xx); a 409 on that resend means this call's own earlier attempt landed: the receipt counts as
        uploaded and is returned with `already_uploaded=True` and ``id="crc32:<checksum>"`` (RMA has no receipt
        listing, so no RMA receipt id can be read; see `Beleg`).
        """
        note = comment if comment is not None else document.description
        request = Request(
            "POST",
            self._resource("belege"),
            form={wire.BELEG_COMMENT_FIELD: note} if note else None,
            files=(FilePart(field=wire.BELEG_FILE_FIELD, filename=document.filename, content=document.content,
                            content_type=document.content_type),),
            conflict_means_landed=True,
            reference=document.filename,
        )  # fmt: skip
        try:
            response = await self.transport.send(request)
        except Conflict as exc:
            raise Conflict(
                f"{document.filename!r}: the same document was uploaded before ({exc.message})",
                backend=self.name,
                status=exc.status,
                request_id=exc.request_id,
                detail=exc.detail,
            ) from None
        if response.confirmed_by_lookup:
            return Beleg.already_stored(file_name=document.filename, content=document.content, comment=note)
        try:
            return Beleg.from_tree(self._written_body(response, "receipt upload"))
        except ResponseError:  # stored (2xx), only the answer is unreadable: known by the key RMA dedupes by
            return Beleg.stored_unread(file_name=document.filename, content=document.content, comment=note)

    async def upload_document(self, document: Document) -> DocumentRef:
        beleg = await self.upload_beleg(document)
        return DocumentRef(id=beleg.id, filename=beleg.file_name or document.filename, raw=beleg.raw)  # see Beleg.id

    # --- registrations (POST gl, inferred body) ----------------------------------------------------------------

    async def submit_registration(self, registration: Registration) -> RegistrationRef:
        """A GL journal entry (`POST gl`). The body is INFERRED (see `inferred.encode_gl`).

        With a `reference`, the GL lines (module ``gl``) of the days around the registration's date
        (`registration_lookup_days`) are searched for it first: the same entry found (same date, accounts and
        amounts) is returned as is (``raw["already_present"]``) and nothing is uploaded or booked; different content
        is `Conflict` naming the journal entry. Attachments are then uploaded as receipts (`upload_beleg`; a lost
        upload answer does not block the entry, the ids in ``raw["attachments"]`` are then ``"crc32:<checksum>"``).
        An ambiguous failure of the post is resolved by looking for the reference among that day's GL lines (AR/AP
        lines with the same reference do not count). Amounts finer than a cent are refused by `validate()`."""
        return await self._submit_gl("gl", registration)

    async def submit_yearend(self, registration: Registration) -> RegistrationRef:
        """`POST gl/yearend`: a year-end booking, same INFERRED body and reference rule as `gl`."""
        return await self._submit_gl("gl/yearend", registration)

    async def find_registration(self, reference: str, *, date: _dt.date | None = None) -> RegistrationRef | None:
        """The GL entry booked with `reference` within `registration_lookup_days` of `date` (default: today), or
        None. RMA lists ledger lines by date only, so an entry further away is not found."""
        safety.business_key(reference, "reference", backend=self.name)
        lines = await self._gl_lines(reference, date or _dt.date.today())
        return None if not lines else _found_registration(reference, lines)

    async def _gl_lines(self, reference: str, around: _dt.date, days: int | None = None) -> list[AccountTransaction]:
        """The GL-module ledger lines carrying `reference`, `days` (default: the setting) either side of `around`."""
        span = _dt.timedelta(days=self.settings.registration_lookup_days if days is None else days)
        lines = await self.account_transactions("x", since=around - span, until=around + span)
        return [line for line in lines if line.reference == reference and _is_gl(line)]

    async def _already_booked(self, registration: Registration) -> RegistrationRef | None:
        if not registration.reference:
            return None
        reference = registration.reference
        lines = await self._gl_lines(reference, registration.date)
        if not lines:
            return None
        differences = _gl_differences(registration, lines)
        if differences:
            raise Conflict(
                f"journal entry {reference!r} is already booked with different content ({', '.join(differences)}); "
                "use another reference for another entry",
                backend=self.name,
                status=409,
            )
        return _found_registration(reference, lines)

    async def _upload_attachments(self, registration: Registration) -> list[str]:
        ids = []
        entry = registration.reference or registration.description
        for doc in registration.attachments:
            try:
                ids.append((await self.upload_beleg(doc, comment=f"Beleg zu Buchung {entry}")).id)
            except Conflict as exc:
                raise Conflict(
                    f"journal entry {entry!r} was not booked: its attachment {doc.filename!r} is already stored in "
                    "Run my Accounts (it refuses the same file twice, e.g. a payslip PDF already attached to another "
                    "entry)",
                    backend=self.name,
                    status=exc.status,
                    request_id=exc.request_id,
                    detail=exc.detail,
                ) from None
        return ids

    async def _submit_gl(self, resource: str, registration: Registration) -> RegistrationRef:
        self.validate(registration)
        if not registration.reference:
            return await self._book_gl(resource, registration)
        async with self._one_entry_at_a_time(registration.reference):
            return await self._book_gl(resource, registration)

    @contextlib.asynccontextmanager
    async def _one_entry_at_a_time(self, reference: str) -> AsyncIterator[None]:
        """Concurrent submits of one reference through this ledger run one after the other, so the second finds
        the first's lines (same content: that entry; different: `Conflict`) instead of booking it twice. Across
        processes the sync journal (`ab.push`) does this."""
        lock, users = self._entries_in_flight.get(reference, (asyncio.Lock(), 0))
        self._entries_in_flight[reference] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._entries_in_flight[reference]
            if users == 1:
                del self._entries_in_flight[reference]
            else:
                self._entries_in_flight[reference] = (lock, users - 1)

    async def _book_gl(self, resource: str, registration: Registration) -> RegistrationRef:
        present = await self._already_booked(registration)
        if present is not None:
            return present
        attachment_ids = await self._upload_attachments(registration)
        lookup = None
        if registration.reference:
            reference = registration.reference

            async def lookup() -> bool:
                return bool(await self._gl_lines(reference, registration.date, days=0))

        response, body = await self._post(
            resource, root=inferred.GL_ROOT, tree=inferred.encode_gl(registration),
            reference=registration.reference, lookup=lookup,
        )  # fmt: skip
        ident = wire.text(body.get("id")) if isinstance(body, Mapping) else None
        raw: dict[str, Any] = {"response": dict(body) if isinstance(body, Mapping) else None,
                               "attachments": attachment_ids}  # fmt: skip
        if body is None and response.body.strip() and not response.confirmed_by_lookup:
            raw["answer_unreadable"] = True  # booked (2xx), but the id in the answer could not be read
        return RegistrationRef(id=ident, reference=registration.reference, raw=raw)

    # --- typed adapter-specific resources ----------------------------------------------------------------------

    async def list_parts(self) -> list[Part]:
        return decode_list(await self._get("parts"), "part", Part)

    async def list_charts(self, *, type: str | None = None) -> list[Chart]:
        return decode_list(await self._get("charts", params={"type": type or ""}), "chart", Chart)

    async def account_transactions(
        self,
        accno: str,
        *,
        since: _dt.date | None = None,
        until: _dt.date | None = None,
        include_openings: bool | None = None,
        include_closings: bool | None = None,
    ) -> list[AccountTransaction]:
        """`/charts/{accno}/transactions` (``10xx`` patterns, ``x`` = all). Amounts in the neutral sign of
        `PostingLine` (debit > 0, credit < 0; RMA's own SQL-Ledger sign is the opposite) and in whole cents."""
        params = {
            "from_date": since.isoformat() if since else "",
            "to_date": until.isoformat() if until else "",
            "include_openings": wire.format_bool(include_openings) if include_openings is not None else "",
            "include_closings": wire.format_bool(include_closings) if include_closings is not None else "",
        }
        return account_transactions(await self._get("charts", accno, "transactions", params=params, field="accno"))

    async def saldo(
        self,
        *,
        accno: str | None = None,
        since: _dt.date | None = None,
        until: _dt.date | None = None,
        exclude_yearend_bookings: bool | None = None,
        version: int = 2,
    ) -> list[SaldoRow]:
        """Trial balance (`gl/v2/saldo`, or v1 `gl/saldo` with positional columns)."""
        params = {
            "accno": accno or "",
            "from": since.isoformat() if since else "",
            "to": until.isoformat() if until else "",
            "exclude_yearend_bookings": (
                wire.format_bool(exclude_yearend_bookings) if exclude_yearend_bookings is not None else ""
            ),
        }
        resource = "gl/v2/saldo" if version == 2 else "gl/saldo"
        return saldo_rows(await self._get(resource, params=params), version=version)

    async def list_vendors(self, *, sort: str | None = None, query: str | None = None) -> list[Vendor]:
        tree = await self._get("vendors", params={"sort": sort or "", "query": query or ""})
        return decode_list(tree, "vendor", Vendor)

    async def upsert_vendor(self, vendor: Vendor) -> Vendor:
        await self._post("vendors", root="vendor", tree=vendor.to_tree(), idempotent=True)

        async def listed() -> Vendor | None:
            return next((v for v in await self.list_vendors(query=vendor.name) if v.number == vendor.number), None)

        return await self._read_back(f"vendor {vendor.number!r}", vendor.number, listed)

    async def list_payables(
        self, *, since: _dt.date | None = None, until: _dt.date | None = None, status: str | None = None
    ) -> list[Payable]:
        params = {"from": since.isoformat() if since else "", "to": until.isoformat() if until else "",
                  "status": status or ""}  # fmt: skip
        return decode_list(await self._get("payables", params=params), "payable", Payable)

    async def get_payable(self, number: str) -> Payable:
        return Payable.from_tree(await self._get("payables", number))

    async def payable_pdf(self, number: str) -> bytes:
        return (await self._binary("payables", number, "pdf", accept="application/pdf", params={})).body

    async def create_payable(self, payable: Payable) -> Payable:
        """`POST payables`; idempotent by number like invoices (look-up before and after an ambiguous failure)."""

        async def exists() -> bool:
            try:
                await self._get("payables", payable.number)
            except NotFound:
                return False
            return True

        if await exists():
            existing = await self.get_payable(payable.number)
            differences = _payable_differences(payable, existing)
            if differences:
                raise Conflict(
                    f"payable {payable.number!r} exists with different content ({', '.join(differences)})",
                    backend=self.name,
                    status=409,
                )
            return existing
        tree = payable.to_tree(ap_accno=self.settings.payables_account)
        await self._post("payables", root="payable", tree=tree, reference=payable.number, lookup=exists)
        return await self._read_back(
            f"payable {payable.number!r}", payable.number, lambda: self.get_payable(payable.number)
        )

    async def list_payable_payments(self, number: str) -> list[Payment]:
        return await self._payments_of("payables", number)

    async def create_payable_payment(self, payment: Payment) -> Payment:
        """`POST payables/{invnumber}/payments`; `payment.invoice_number` is the vendor invoice number."""
        return await self._create_payment("payables", payment)

    async def list_departments(self) -> list[Department]:
        return decode_list(await self._get("departments"), "department", Department)

    async def list_projects(self) -> list[Project]:
        return decode_list(await self._get("projects"), "project", Project)


def _is_gl(line: AccountTransaction) -> bool:
    return (line.module or "").lower() == inferred.GL_MODULE


def _found_registration(reference: str, lines: Sequence[AccountTransaction]) -> RegistrationRef:
    """A booked GL entry as a `RegistrationRef`. Which field of a ledger line names its journal entry is not
    documented (see `inferred`), so `id` is None and the lines are in ``raw["lines"]``."""
    return RegistrationRef(
        id=None,
        reference=reference,
        raw={"already_present": True, "date": lines[0].date.isoformat(), "lines": [line.raw for line in lines]},
    )


def _gl_differences(registration: Registration, lines: Sequence[AccountTransaction]) -> list[str]:
    """What differs between a registration and the GL lines booked under its reference (empty: the same entry)."""
    differences = []
    if {line.date for line in lines} != {registration.date}:
        differences.append("date")
    sent = sorted((line.account, line.amount) for line in registration.lines)
    booked = sorted((line.accno, line.amount) for line in lines)
    if sent != booked:
        differences.append("lines")
    return differences  # the description is not compared: how RMA hands it back on ledger lines is not documented


def _payable_differences(sent: Payable, stored: Payable) -> list[str]:
    """What the caller sent for a payable that differs in the stored one of the same number (idempotent create);
    optional texts the caller left empty are not compared, texts are compared as the wire hands them back
    (`wire.comparable_text`)."""
    same_text = wire.comparable_text
    pairs: dict[str, tuple[Any, Any]] = {
        "vendor": (sent.vendor.number, stored.vendor.number),
        "issue_date": (sent.issue_date, stored.issue_date),
        "due_date": (sent.due_date or sent.issue_date, stored.due_date),
        "currency": (sent.currency, stored.currency),
        "prices_include_tax": (sent.prices_include_tax, stored.prices_include_tax),
    }
    if same_text(sent.title):
        pairs["title"] = (same_text(sent.title), same_text(stored.title))
    if same_text(sent.order_number):
        pairs["order_number"] = (same_text(sent.order_number), same_text(stored.order_number))
    differences = [name for name, (mine, theirs) in pairs.items() if mine != theirs]
    if len(sent.lines) != len(stored.lines):
        return [*differences, "lines"]
    for index, (mine, theirs) in enumerate(zip(sent.lines, stored.lines, strict=True)):
        line_pairs = {
            "description": (same_text(mine.description), same_text(theirs.description)),
            "quantity": (mine.quantity, theirs.quantity),
            "unit_price": (mine.unit_price, theirs.unit_price),
            "item_number": (mine.item_number, theirs.item_number),
        }
        if mine.account:
            line_pairs["account"] = (mine.account, theirs.account)
        differences += [f"lines[{index}].{name}" for name, (a, b) in line_pairs.items() if a != b]
    return differences


#: the business key of each model that Run my Accounts puts into a URL path
_PATH_KEYS: Mapping[type, str] = {Customer: "number", Invoice: "number", Payment: "invoice_number"}


def _path_key_errors(item: object) -> list[FieldError]:
    name = _PATH_KEYS.get(type(item))
    if name is None:
        return []
    problem = safety.segment_problem(getattr(item, name))
    return [] if problem is None else [FieldError(name, problem)]


def _lengths(item: object, limits: Mapping[str, int]) -> list[FieldError]:
    errors = []
    for name, limit in limits.items():
        value = getattr(item, name, None)
        if isinstance(value, str) and len(value) > limit:
            errors.append(FieldError(name, f"at most {limit} characters for Run my Accounts"))
    return errors
