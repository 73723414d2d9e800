"""`multiregnskab`: the Multi-Regnskab Public Client API v1 (user name + password → token + refresh token)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import re
import zoneinfo
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs

from accounting_bridge import safety
from accounting_bridge.errors import (
    ConfigurationError,
    FieldError,
    NotFound,
    PermissionDenied,
    ResponseError,
    ValidationError,
)
from accounting_bridge.http_adapter import HttpAdapter
from accounting_bridge.ledger import Capability, Company
from accounting_bridge.models import (
    BankTransaction,
    Document,
    DocumentRef,
    Invoice,
    InvoiceStatus,
    Registration,
    RegistrationRef,
)
from accounting_bridge.settings import CommonSettings, secret_field
from accounting_bridge.transport.auth import Token, TokenAuth, credential_binding
from accounting_bridge.transport.http import Request, Response, Transport

from . import wire
from .answers import read_written
from .customers import SharedCustomers
from .submit_flow import submit_with_attachments

__all__ = ["DEFAULT_BASE_URL", "MultiRegnskabAdapter", "MultiRegnskabSettings", "token_binding"]

DEFAULT_BASE_URL = "https://www.multiregnskab.dk/open/clientapi/v1"
TRACE_HEADER = "X-MultiRegnskabTraceId"


_XID = re.compile("[0-9]{1,19}")


def _trace_headers(trace_id: str | None, *, backend: str) -> dict[str, str]:
    """The `trace_id` setting as the trace header (checked: it is sent with every request)."""
    if not trace_id:
        return {}
    return {TRACE_HEADER: safety.setting_header_value(trace_id, "trace_id", backend=backend)}


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _positive_int(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"setting {attribute.name!r} must be a whole number >= 1")


@attrs.frozen(kw_only=True)
class MultiRegnskabSettings(CommonSettings):
    """``ab.connect("multiregnskab", username=..., password=..., company=...)``.

    Without `password` the adapter lives on the token (and refresh token) held by `token_store`.
    """

    username: str
    password: str | None = secret_field(default=None)
    #: companyXid, CVR number or exact name; default: the user's last used company, else the first one
    company: str | int | None = None
    #: documents.upload: hide the file until a registration references it (the API's own default is True)
    keep_uploads_hidden: bool = False
    #: `tokenExpires` carries no time zone; the API's other timestamps are CET
    token_timezone: str = wire.DEFAULT_TOKEN_TIMEZONE
    archive_page_size: int = attrs.field(default=100, validator=_positive_int)
    #: bank postings are fetched in windows of this many days, always with explicit from/to dates
    bank_window_days: int = attrs.field(default=31, validator=_positive_int)
    #: when `since` is not given, look back this many days from `until` (the API itself would use one month)
    bank_lookback_days: int = attrs.field(default=365, validator=_positive_int)
    #: productTypeXid for invoice lines that name neither a product (item_number) nor a product type (account)
    default_product_type: int | None = None
    #: sent as X-MultiRegnskabTraceId on every request (registrations send their reference instead)
    trace_id: str | None = None
    #: the clock for token expiry and "today" (tests); timezone-aware
    clock: Callable[[], _dt.datetime] | None = attrs.field(default=None, repr=False)


def token_binding(username: str, password: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """The `Token.binding` of tokens this user obtains at `base_url` by logging in: a token saved to a shared
    `TokenStore` by code outside this SDK must carry it, or the ledger logs in afresh."""
    host = urlsplit(base_url).netloc.lower()
    return credential_binding("multiregnskab", username.strip().lower(), password, host)


class MultiRegnskabAdapter(SharedCustomers, HttpAdapter):
    name: ClassVar[str] = "multiregnskab"
    credential_settings: ClassVar[str | None] = "username and password, or the token held in token_store"
    settings_class: ClassVar[type[Any]] = MultiRegnskabSettings
    #: the local sandbox server, imported only by `accounting_bridge.sandbox.create`
    sandbox: ClassVar[str] = "accounting_bridge.adapters.multiregnskab.sandbox:MultiRegnskabSandbox"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.COMPANIES_LIST,
            Capability.CUSTOMERS_LIST,
            Capability.CUSTOMERS_GET,
            Capability.CUSTOMERS_UPSERT,
            Capability.INVOICES_CREATE_DRAFT,  # drafts only: create needs status=InvoiceStatus.DRAFT
            Capability.BANK_TRANSACTIONS_LIST,
            Capability.DOCUMENTS_UPLOAD,
            Capability.DOCUMENTS_LIST,
            Capability.DOCUMENTS_GET,
            Capability.DOCUMENTS_DELETE,
            Capability.REGISTRATIONS_SUBMIT,
            Capability.RAW,
        }
    )

    def __init__(self, settings: MultiRegnskabSettings) -> None:
        if not isinstance(settings.username, str) or not settings.username.strip():
            raise ConfigurationError("setting 'username' must be a non-empty string", backend=self.name)
        try:
            zoneinfo.ZoneInfo(settings.token_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError("setting 'token_timezone' is not a known time zone", backend=self.name) from None
        self.settings = settings
        self.clock: Callable[[], _dt.datetime] = settings.clock or _utcnow
        headers = _trace_headers(settings.trace_id, backend=self.name)
        config = settings.transport_config(self.name, DEFAULT_BASE_URL, default_headers=headers)
        host = urlsplit(config.base_url).netloc
        password = settings.password
        self.auth = TokenAuth(
            store_key=f"multiregnskab:{settings.username.strip().lower()}@{host}",
            obtain=self._login if password is not None else None,
            refresh=self._refresh,  # presents no secret: a token of another binding means a new login
            store=settings.token_store,
            clock=self.clock,
            # without a password the token store is the credential: only unbound tokens placed there are used
            binding=token_binding(settings.username, password, config.base_url) if password is not None else None,
        )
        secrets = (settings.password,) if settings.password else ()
        self.transport = Transport(config, auth=self.auth, session=settings.session, secrets=secrets)
        self._company_xid: int | None = None
        self._company_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"<MultiRegnskabAdapter user={self.settings.username!r} company={self._company_xid!r}>"

    # --- auth --------------------------------------------------------------------------------------------------

    async def _login(self, transport: Transport) -> Token:
        body = {"userName": self.settings.username, "password": self.settings.password}
        request = Request("POST", "/login", json=body, authenticate=False, idempotent=True)
        return self._token_of(await transport.send(request))

    async def _refresh(self, transport: Transport, token: Token) -> Token:
        """The (possibly expired) access token in the header and the refresh token in the body (spec)."""
        request = Request(
            "POST",
            "/refreshToken",
            headers={"Authorization": f"Bearer {token.access_token}"},
            json={"refreshToken": token.refresh_token},
            authenticate=False,
            idempotent=True,  # a lost answer: the old refresh token is then refused and the adapter logs in again
        )
        return self._token_of(await transport.send(request))

    def _token_of(self, response: Response) -> Token:
        """The token of a login or refresh answer; its lifetime measured against the answer's `Date` header."""
        return wire.decode_token(
            response.json(),
            timezone=self.settings.token_timezone,
            server_date=response.headers.get("Date"),
            now=self.clock(),
        )

    async def logout(
        self,
        *,
        all_tokens: bool = False,
        invalidate_now: bool = True,
        expire_access_token_now: bool = False,
        expire_refresh_token_now: bool = False,
    ) -> int:
        """``DELETE /tokens`` (with a JSON body); returns `tokensAffected`. The `expire_*` flags help testing."""
        body = {
            "applyToAllTokensByUser": all_tokens,
            "invalidateNow": invalidate_now,
            "expireAccessTokenNow": expire_access_token_now,
            "expireRefreshTokenNow": expire_refresh_token_now,
        }
        data = await self._json("DELETE", "/tokens", json=body)
        affected = data.get("tokensAffected") if isinstance(data, Mapping) else None
        return affected if isinstance(affected, int) else 0

    async def user(self) -> dict[str, Any]:
        """``GET /user``: userName, realName, administrator details."""
        return dict(await self._json("GET", "/user"))

    async def access_request(self) -> str:
        """``POST /accessRequest``: the code another user needs to grant this user access to a company."""
        data = await self._json("POST", "/accessRequest", idempotent=True)  # returns the current code again
        return str(data.get("accessRequestCode", ""))

    # --- helpers -----------------------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, **kwargs: Any) -> Response:
        lookup = kwargs.pop("lookup", None)
        return await self.transport.send(Request(method, path, **kwargs), lookup=lookup)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, **kwargs)
        if not response.body:
            return {}
        data = response.json()
        if not isinstance(data, Mapping):
            raise ResponseError(f"{method} {path}: expected a JSON object", backend=self.name)
        return data

    def today(self) -> _dt.date:
        return self.clock().astimezone(zoneinfo.ZoneInfo(self.settings.token_timezone)).date()

    # --- companies ---------------------------------------------------------------------------------------------

    async def _companies(self) -> tuple[list[Company], list[int]]:
        return wire.decode_companies(await self._json("GET", "/companies"))

    async def list_companies(self) -> list[Company]:
        return (await self._companies())[0]

    async def company_xid(self) -> int:
        """The company every call works on: the `company` setting, else the last used, else the first."""
        if self._company_xid is not None:
            return self._company_xid
        if self._company_lock is None:
            self._company_lock = asyncio.Lock()
        async with self._company_lock:
            if self._company_xid is None:
                companies, last = await self._companies()
                self._company_xid = self._choose_company(companies, last)
        return self._company_xid

    def _choose_company(self, companies: list[Company], last: list[int]) -> int:
        wanted = self.settings.company
        if wanted is not None:
            key = str(wanted).strip()
            for company in companies:
                cvr = company.raw.get("cvr") if isinstance(company.raw, Mapping) else None
                if key in (company.id, company.name, str(cvr)):
                    return int(company.id)
            names = ", ".join(f"{c.id} ({c.name})" for c in companies) or "none"
            raise ConfigurationError(
                f"company {key!r} is not among the companies this user can reach: {names}", backend=self.name
            )
        if not companies:
            raise PermissionDenied("the user has no access to any company", backend=self.name)
        ids = {int(c.id) for c in companies}
        for xid in last:
            if xid in ids:
                return xid
        return int(companies[0].id)

    # --- validation --------------------------------------------------------------------------------------------

    def validate(self, item: object) -> None:
        errors = wire.check_shared(item)
        if isinstance(item, Invoice):
            errors = wire.check_invoice(item)
            if item.customer is not None:
                errors += [FieldError(f"customer.{e.path}", e.message) for e in wire.check_customer(item.customer)]
        if errors:
            raise ValidationError(errors, backend=self.name, model=type(item).__name__)

    # --- customers ---------------------------------------------------------------------------------------------

    async def _customer_rows(self) -> list[Mapping[str, Any]]:
        company = await self.company_xid()
        return wire.list_of(await self._json("GET", f"/customers/{company}"), "customers", "customers")

    async def _customer_company(self) -> Any:
        return await self.company_xid()

    async def _post_customer(self, payload: Mapping[str, Any], *, reference: str, lookup: Any) -> Response:
        return await self._send("POST", "/customers", json=payload, reference=reference, lookup=lookup)

    # --- products (read-only) ----------------------------------------------------------------------------------

    async def product_types(self) -> list[dict[str, Any]]:
        """``GET /productTypes/{companyXid}`` → ``[{productTypeXid, typeName}]``."""
        company = await self.company_xid()
        return [dict(r) for r in wire.list_of(await self._json("GET", f"/productTypes/{company}"), "ptList", "ptList")]

    async def products(self) -> list[dict[str, Any]]:
        """``GET /products/{companyXid}``; prices decoded to Decimal."""
        company = await self.company_xid()
        rows = wire.list_of(await self._json("GET", f"/products/{company}"), "productList", "products")
        result = []
        for row in rows:
            item = dict(row)
            raw_prices = item.get("prices")
            prices: list[Any] = raw_prices if isinstance(raw_prices, list) else []
            try:
                item["prices"] = [
                    {**p, "price": wire.parse_money(p["price"])} if isinstance(p.get("price"), str) else p
                    for p in prices
                ]
            except wire.MoneyFormatError:
                raise ResponseError("products: unreadable price", backend=self.name) from None
            result.append(item)
        return result

    async def units_of_measure(self, language: str = "DA") -> list[dict[str, Any]]:
        """``GET /unitsOfMeasure/{language}`` ("DA" or "EN")."""
        code = safety.path_segment(language, "language", backend=self.name).upper()
        data = await self._json("GET", f"/unitsOfMeasure/{code}")
        return [dict(r) for r in wire.list_of(data, "uomList", "units of measure")]

    # --- invoices (drafts) -------------------------------------------------------------------------------------

    async def create_invoice(self, invoice: Invoice) -> Invoice:
        """``POST /invoices``: a draft (the API cannot issue one: the ledger asks for `status=DRAFT`). Line
        product: `item_number` = productId, else `account` = product type (xid or name), else the
        `default_product_type` setting. Line amounts are rounded to øre (half up, see `wire.invoice_line_amount`);
        `net_total` is their sum. Not idempotent: an ambiguous failure, or an
        accepted answer that cannot be read, is `WriteOutcomeUnknown(reference=invoice.number)`."""
        company = await self.company_xid()
        if invoice.customer is not None:
            await self.upsert_customer(invoice.customer)
        row = await self._find_customer(invoice.customer_key)
        if row is None:
            raise ValidationError(
                FieldError("customer_number", f"customer {invoice.customer_key!r} does not exist"), backend=self.name
            )
        customer_xid = wire.xid_of(row, "customer")
        line_products = await self._line_products(invoice)
        payload = wire.encode_invoice(
            invoice, company_xid=company, customer_xid=customer_xid, line_products=line_products
        )
        response = await self._send("POST", "/invoices", json=payload, reference=invoice.number)
        xid = read_written(
            response,
            lambda r: wire.xid_of(r.json(), "create invoice"),
            what="create invoice",
            backend=self.name,
            reference=invoice.number,
        )
        return attrs.evolve(
            invoice,
            status=InvoiceStatus.DRAFT,
            net_total=sum((wire.invoice_line_amount(line) for line in invoice.lines), Decimal(0)),
            id=str(xid),
            raw={**payload, "invoiceXid": xid},
        )

    async def _line_products(self, invoice: Invoice) -> list[tuple[int, int | None]]:
        products: list[dict[str, Any]] | None = None
        types: list[dict[str, Any]] | None = None
        result: list[tuple[int, int | None]] = []
        errors: list[FieldError] = []
        for index, line in enumerate(invoice.lines):
            if line.item_number:
                products = products if products is not None else await self.products()
                match = next((p for p in products if p.get("productId") == line.item_number), None)
                if match is None:
                    errors.append(FieldError(f"lines[{index}].item_number", f"no product {line.item_number!r}"))
                    continue
                result.append((int(match["productTypeXid"]), int(match["productXid"])))
            elif line.account:
                types = types if types is not None else await self.product_types()
                found = next(
                    (t for t in types if line.account in (str(t.get("productTypeXid")), t.get("typeName"))), None
                )
                if found is None:
                    errors.append(FieldError(f"lines[{index}].account", f"no product type {line.account!r}"))
                    continue
                result.append((int(found["productTypeXid"]), None))
            elif self.settings.default_product_type is not None:
                result.append((self.settings.default_product_type, None))
            else:
                errors.append(
                    FieldError(
                        f"lines[{index}]",
                        "needs a product (item_number), a product type (account) or the default_product_type setting",
                    )
                )
        if errors:
            raise ValidationError(errors, backend=self.name, model="Invoice")
        return result

    # --- bank --------------------------------------------------------------------------------------------------

    async def bank_accounts(self) -> list[dict[str, Any]]:
        """``GET /bankAccounts/{companyXid}`` → ``[{xid, name, currency, banksIdentification}]``."""
        company = await self.company_xid()
        data = await self._json("GET", f"/bankAccounts/{company}")
        return [dict(r) for r in wire.list_of(data, "accounts", "bank accounts", required=False)]

    async def bank_balances(self) -> list[dict[str, Any]]:
        """``GET /bankBalances/{companyXid}``; `balanceAmount` decoded to Decimal."""
        company = await self.company_xid()
        rows = wire.list_of(await self._json("GET", f"/bankBalances/{company}"), "bbList", "bank balances")
        out = []
        for row in rows:
            item = dict(row)
            amount = item.get("balanceAmount")
            if isinstance(amount, str):
                try:
                    item["balanceAmount"] = wire.parse_money(amount)
                except wire.MoneyFormatError:
                    raise ResponseError("bank balance: unreadable balanceAmount", backend=self.name) from None
            out.append(item)
        return out

    async def list_bank_transactions(
        self, *, account: str | None, since: _dt.date | None, until: _dt.date | None
    ) -> AsyncIterator[BankTransaction]:
        """Postings already imported, oldest first, in windows of `bank_window_days` that are always sent
        explicitly (the API's own default would be the last month). `account`: xid, name or bank identification."""
        company = await self.company_xid()
        accounts = await self.bank_accounts()
        if account is not None:
            accounts = [
                a for a in accounts if account in (str(a.get("xid")), a.get("name"), a.get("banksIdentification"))
            ]
            if not accounts:
                raise NotFound(f"bank account {account!r} not found", backend=self.name, status=404)
        last = until or self.today()
        first = since or last - _dt.timedelta(days=self.settings.bank_lookback_days)
        step = _dt.timedelta(days=self.settings.bank_window_days)
        for bank in accounts:
            xid = wire.xid_of(bank, "bank account")
            currency = bank.get("currency") if isinstance(bank.get("currency"), str) else None
            start = first
            while start <= last:
                end = min(start + step - _dt.timedelta(days=1), last)
                params = {"fromDateIncl": start.isoformat(), "toDateIncl": end.isoformat()}
                data = await self._json("GET", f"/bankPostings/{company}/{xid}", params=params)
                postings = [
                    wire.decode_bank_posting(r, account=str(xid), currency=currency)
                    for r in wire.list_of(data, "bpList", "bank postings")
                ]
                for posting in sorted(postings, key=lambda p: (p.date, int(p.id or 0))):
                    yield posting
                start = end + _dt.timedelta(days=1)

    # --- documents ---------------------------------------------------------------------------------------------

    async def _upload(self, document: Document, *, keep_hidden: bool, reference: str | None) -> int:
        company = await self.company_xid()
        payload = wire.encode_file_upload(document, company_xid=company, keep_hidden=keep_hidden)
        response = await self._send("POST", "/filesForUseInRegistrations", json=payload, reference=reference)
        return read_written(
            response,
            lambda r: wire.xid_of(r.json(), "file upload"),
            what="file upload",
            backend=self.name,
            reference=reference,
        )

    async def upload_document(self, document: Document) -> DocumentRef:
        """Into the archive; visible in the inbox unless `keep_uploads_hidden` is set. Not idempotent: an ambiguous
        failure or an unreadable accepted answer is `WriteOutcomeUnknown(reference=document.filename)`."""
        xid = await self._upload(document, keep_hidden=self.settings.keep_uploads_hidden, reference=document.filename)
        return DocumentRef(id=str(xid), filename=document.filename)

    async def list_documents(self) -> AsyncIterator[DocumentRef]:
        """The archive, page by page (`maxLines`, `continuationToken`). Hidden uploads are not listed."""
        company = await self.company_xid()
        token: str | None = None
        seen: set[str] = set()
        while True:
            params = {"companyXid": str(company), "maxLines": str(self.settings.archive_page_size)}
            if token:
                params["continuationToken"] = token
            data = await self._json("GET", "/archiveFiles", params=params)
            for row in wire.list_of(data, "archiveFilesList", "archive files"):
                yield wire.decode_archive_line(row)
            token = data.get("continuationToken") or None
            if token is None:
                return
            if token in seen:
                raise ResponseError("archive files: the continuation token repeats", backend=self.name)
            seen.add(token)

    @staticmethod
    def _document_xid(document_id: str) -> int:
        if isinstance(document_id, bool) or not _XID.fullmatch(str(document_id)):
            raise ValidationError(FieldError("document_id", "must be a numeric archive file xid"))
        return int(document_id)

    async def get_document(self, document_id: str) -> Document:
        xid = self._document_xid(document_id)
        company = await self.company_xid()
        params = {"companyXid": str(company), "archiveFileXid": str(xid)}
        return wire.decode_archive_file(await self._json("GET", "/archiveFile", params=params))

    async def delete_document(self, document_id: str) -> None:
        """404 → `NotFound`; 409 (delete-protected, e.g. attached to a registration) → `Conflict`."""
        xid = self._document_xid(document_id)
        company = await self.company_xid()
        await self._send("DELETE", f"/archiveFile/{company}/{xid}")

    async def update_document(
        self, document_id: str, *, date: _dt.date, friendly_filename: str, comment: str | None = None
    ) -> None:
        """``PUT /archiveFile/{companyXid}/{xid}``: date, friendly name, a new comment (the binary cannot change)."""
        xid = self._document_xid(document_id)
        company = await self.company_xid()
        body = {"date": date.isoformat(), "friendlyFilename": friendly_filename, "comment": comment}
        await self._send("PUT", f"/archiveFile/{company}/{xid}", json=body)

    # --- registrations -----------------------------------------------------------------------------------------

    async def submit_registration(self, registration: Registration) -> RegistrationRef:
        """Upload the attachments (hidden until the registration references them), then ``POST
        /suggestedRegistrations`` once: it is not idempotent, so an ambiguous failure is `WriteOutcomeUnknown`
        carrying `registration.reference`, never a resend — so is a 2xx answer that cannot be read (the
        registration was stored). A definite failure deletes the uploads."""
        company = await self.company_xid()
        reference = registration.reference

        async def upload(document: Document) -> int:
            return await self._upload(document, keep_hidden=True, reference=reference)

        async def submit(file_xids: Sequence[int]) -> Response:
            payload = wire.encode_registration(registration, company_xid=company, file_xids=file_xids)
            headers = {TRACE_HEADER: safety.header_value(reference, "reference")} if reference else {}
            return await self._send(
                "POST", "/suggestedRegistrations", json=payload, reference=reference, headers=headers
            )

        def read_xid(response: Response) -> int:
            return wire.xid_of(response.json(), "suggested registration")

        async def delete(xid: int) -> None:
            await self._send("DELETE", f"/archiveFile/{company}/{xid}")

        xid, files = await submit_with_attachments(
            registration, upload=upload, submit=submit, read_xid=read_xid, delete=delete, backend=self.name
        )
        return RegistrationRef(id=str(xid), reference=reference, raw={"xid": xid, "filesToAttachXids": files})
