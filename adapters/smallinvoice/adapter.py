"""The `smallinvoice` adapter: smallinvoice API v2 (OAuth2 bearer tokens, `X-Rate-Limit-*` headers).

Customers are contacts (keyed by contact number), invoices are receivables invoices (keyed by invoice number),
payments live under their invoice. Documents and bank transactions do not exist in API v2: those capabilities are
absent. Token renewal, single-flight refresh, rate limiting, retries and redaction are the core transport's.

Amounts come back at the currency's scale (`accounting_bridge.money`). An invoice's `net_total` and `tax_total`
are always None: smallinvoice answers with the gross `total` only, without a VAT split, and the adapter does not
guess how smallinvoice rounds VAT.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import attrs

from accounting_bridge import jsoncodec, outcomes, safety
from accounting_bridge.errors import (
    AccountingError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    FieldError,
    NotFound,
    ResponseError,
    Unprocessable,
    ValidationError,
    WriteOutcomeUnknown,
)
from accounting_bridge.filters import in_window, invoice_matches
from accounting_bridge.http_adapter import HttpAdapter
from accounting_bridge.ledger import Capability
from accounting_bridge.models import Customer, Invoice, InvoiceLine, InvoiceStatus, Payment
from accounting_bridge.settings import CommonSettings, secret_field
from accounting_bridge.transport.auth import OAuth2Client, Token, TokenAuth, credential_binding, fingerprint
from accounting_bridge.transport.http import Request, Response, Transport

from . import constants as c
from . import wire
from .cache import SingleFlightCache

__all__ = ["CAPABILITIES", "SmallInvoiceAdapter", "SmallInvoiceSettings", "token_binding"]

CAPABILITIES: frozenset[Capability] = frozenset(
    {
        Capability.CUSTOMERS_LIST,
        Capability.CUSTOMERS_GET,
        Capability.CUSTOMERS_UPSERT,
        Capability.INVOICES_LIST,
        Capability.INVOICES_GET,
        Capability.INVOICES_CREATE,
        Capability.INVOICES_CREATE_DRAFT,
        Capability.INVOICES_PDF,
        Capability.INVOICES_CANCEL,
        Capability.PAYMENTS_LIST,
        Capability.PAYMENTS_CREATE,
        Capability.RAW,
    }
)

GRANTS = ("client_credentials", "refresh_token")

T = TypeVar("T")

logger = logging.getLogger(__name__)

_NEUTRAL_TO_CODE: dict[InvoiceStatus, str] = {
    InvoiceStatus.DRAFT: c.STATUS_DRAFT,
    InvoiceStatus.OPEN: c.STATUS_SENT,
    InvoiceStatus.PAID: c.STATUS_PAID,
    InvoiceStatus.PARTIALLY_PAID: c.STATUS_PARTIALLY_PAID,
    InvoiceStatus.OVERDUE: "R",
    InvoiceStatus.CANCELLED: c.STATUS_CANCELLED,
}


def _scopes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    raise ConfigurationError("setting 'scopes' must be a space-separated string or a list of scopes")


def _one_of(*allowed: Any) -> Any:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in allowed:
            shown = ", ".join(str(a) for a in allowed)
            raise ConfigurationError(f"setting {attribute.name!r} must be one of: {shown}")

    return check


def _text_setting(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"setting {attribute.name!r} must be a non-empty string")


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"setting {attribute.name!r} must be a whole number of at least 1")


def _seconds(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"setting {attribute.name!r} must be a number of seconds, 0 or more")


def _page_size(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= c.MAX_PAGE_SIZE:
        raise ConfigurationError(f"setting {attribute.name!r} must be a whole number 1..{c.MAX_PAGE_SIZE}")


@attrs.frozen(kw_only=True)
class SmallInvoiceSettings(CommonSettings):
    """`ab.connect("smallinvoice", client_id=..., client_secret=..., ...)`.

    `base_url` defaults to production (`constants.PRODUCTION_URL`); staging is `constants.STAGING_URL`.
    With `refresh_token` (from the authorization-code grant) the refresh-token grant is used and every rotated
    refresh token is saved to `token_store` under `token_key` before the new access token is used; a token found
    in the store wins over the `refresh_token` setting. Without it, the client-credentials grant is used.
    """

    client_id: str = attrs.field(validator=_text_setting)
    client_secret: str = secret_field(validator=_text_setting)
    scopes: tuple[str, ...] = attrs.field(default=c.DEFAULT_SCOPES, converter=_scopes)
    refresh_token: str | None = secret_field(default=None)
    grant: str | None = attrs.field(default=None, validator=_one_of(None, *GRANTS))
    token_key: str | None = None  # names the credential in the TokenStore (default derived from client id)
    language: str = attrs.field(default="de", validator=_one_of(*c.LANGUAGES))
    currency: str = "CHF"  # invoice currency when neither invoice nor contact has one
    page_size: int = attrs.field(default=c.DEFAULT_PAGE_SIZE, validator=_page_size)
    default_unit_id: int | None = None  # unit of lines without `unit` (default: the first unit smallinvoice lists)
    person_gender: str | None = attrs.field(default=None, validator=_one_of(None, "M", "F"))
    payment_days: int = c.DEFAULT_PAYMENT_DAYS  # due date = issue date + this, when the invoice has none
    #: most items scanned client-side per look-up by number when the server ignores the `filter` (see constants)
    lookup_scan_limit: int = attrs.field(default=c.DEFAULT_LOOKUP_SCAN_LIMIT, validator=_positive)
    #: seconds a contact looked up by number is reused by invoice creates (0: look it up for every invoice)
    contact_cache_ttl: float = attrs.field(default=c.CONTACT_CACHE_TTL, validator=_seconds)

    @property
    def effective_grant(self) -> str:
        return self.grant or ("refresh_token" if self.refresh_token else "client_credentials")

    @property
    def effective_token_key(self) -> str:
        if self.token_key:
            return self.token_key
        key = f"smallinvoice:{self.client_id}"
        if self.effective_grant == "refresh_token":
            if self.refresh_token:
                key += ":" + fingerprint(self.refresh_token)
        elif self.scopes:  # a token of other scopes is another credential
            key += ":" + "+".join(sorted(self.scopes))
        return key


def token_binding(client_id: str, client_secret: str, base_url: str = c.PRODUCTION_URL) -> str:
    """The `Token.binding` of tokens this client obtains at `base_url`: a token saved to a shared `TokenStore` by
    code outside this SDK must carry it, or its access token is not used (its refresh token still is)."""
    return credential_binding("smallinvoice", client_id, client_secret, urlsplit(base_url).netloc.lower())


class SmallInvoiceAdapter(HttpAdapter):
    name: ClassVar[str] = "smallinvoice"
    credential_settings: ClassVar[str | None] = "client_id and client_secret, and refresh_token or token_store"
    settings_class: ClassVar[type[Any]] = SmallInvoiceSettings
    #: the local sandbox server, imported only by `accounting_bridge.sandbox.create`
    sandbox: ClassVar[str] = "accounting_bridge.adapters.smallinvoice.sandbox:SmallInvoiceSandbox"
    capabilities: ClassVar[frozenset[Capability]] = CAPABILITIES

    def __init__(self, settings: SmallInvoiceSettings) -> None:
        self.settings = settings
        self.oauth = OAuth2Client(
            token_url=c.TOKEN_PATH,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            scopes=settings.scopes,
            body="json",
        )
        self._initial_refresh_used = False
        self._refused: set[str] = set()  # fingerprints of refresh tokens the server refused to this adapter
        self._client_refusal: AuthenticationError | None = None  # the client (id + secret) refused by a refresh
        config = settings.transport_config(
            self.name, c.PRODUCTION_URL, default_headers={"Accept-Language": settings.language}
        )
        # tokens are only used by ledgers holding the secret they were obtained with (for the same host)
        binding = token_binding(settings.client_id, settings.client_secret, config.base_url)
        if settings.effective_grant == "refresh_token":
            self.auth = TokenAuth(
                store_key=settings.effective_token_key,
                obtain=self._obtain_from_refresh_setting,
                refresh=self._refresh,
                store=settings.token_store,
                refresh_margin=_dt.timedelta(minutes=5),
                binding=binding,
                refresh_proves_secret=True,  # the refresh grant sends client_id + client_secret
            )
        else:
            self.auth = TokenAuth(
                store_key=settings.effective_token_key,
                obtain=self.oauth.client_credentials,
                store=settings.token_store,
                refresh_margin=_dt.timedelta(minutes=5),
                binding=binding,
            )
        secrets = tuple(s for s in (settings.client_secret, settings.refresh_token) if s)
        self.transport = Transport(
            config, auth=self.auth, session=settings.session, error_info=wire.error_info, secrets=secrets
        )
        self._units: SingleFlightCache[list[dict[str, Any]]] = SingleFlightCache(None)  # for the ledger's life
        #: contacts by number (None: known absent is never cached), shared by concurrent creates of one push
        self._contacts: SingleFlightCache[dict[str, Any]] = SingleFlightCache(settings.contact_cache_ttl)
        self._filter_unreliable: set[str] = set()  # list paths whose `filter` answer held other numbers

    def __repr__(self) -> str:
        return f"<SmallInvoiceAdapter client_id={self.settings.client_id!r}>"

    async def _refresh(self, transport: Transport, token: Token) -> Token:
        """The refresh-token grant; a refused refresh token is remembered (by fingerprint) as spent. When the client
        itself was refused (a wrong secret), the refresh token is not spent and that refusal is what the caller
        hears (`_obtain_from_refresh_setting`)."""
        try:
            return await self.oauth.refresh_token(transport, token)
        except AuthenticationError as exc:
            detail = exc.detail if isinstance(exc.detail, Mapping) else {}
            if detail.get("error") == "invalid_client":
                self._client_refusal = exc
            elif token.refresh_token:
                self._refused.add(fingerprint(token.refresh_token))
            raise

    async def _obtain_from_refresh_setting(self, transport: Transport) -> Token:
        """A token of the refresh-token grant when the held one is missing or its refresh token was refused.

        The token store comes first: another process sharing it may have rotated the refresh token (so ours was
        refused) and saved a newer token there; that one is used as it is while its access token is valid, else
        refreshed. Only then the configured `refresh_token`, at most once (refresh tokens are single use).
        """
        refusal, self._client_refusal = self._client_refusal, None
        if refusal is not None:
            raise refusal  # a wrong client secret: no refresh token can help
        store = self.settings.token_store
        stored = await store.load(self.auth.store_key) if store is not None else None
        if stored is not None and stored.refresh_token and fingerprint(stored.refresh_token) not in self._refused:
            if self.auth.usable(stored):  # ours (same secret), valid
                return stored
            # expired, or obtained with another secret: only its refresh token, presented with our secret
            return await self._refresh(transport, Token(access_token="", refresh_token=stored.refresh_token))
        if self.settings.refresh_token and not self._initial_refresh_used:
            self._initial_refresh_used = True
            initial = Token(access_token="", refresh_token=self.settings.refresh_token)
            return await self._refresh(transport, initial)
        if stored is not None or self._refused:
            raise AuthenticationError(
                "the refresh token was already used (refresh tokens are single use) or revoked, and the token store "
                f"holds no newer one under {self.settings.effective_token_key!r}: authorize again",
                backend=self.name,
            )
        raise AuthenticationError(
            "no refresh token: pass refresh_token= or a token_store holding a token under "
            f"{self.settings.effective_token_key!r}",
            backend=self.name,
        )

    # --- validation (before any I/O) ---------------------------------------------------------------------------

    def validate(self, item: object) -> None:
        errors: list[FieldError] = []
        if isinstance(item, Customer):
            errors = wire.customer_issues(item)
        elif isinstance(item, Invoice):
            errors = wire.invoice_issues(item)
            if item.customer is not None:
                errors += [FieldError(f"customer.{e.path}", e.message) for e in wire.customer_issues(item.customer)]
        elif isinstance(item, Payment):
            errors = wire.payment_issues(item)
        if errors:
            raise ValidationError(errors, backend=self.name, model=type(item).__name__)

    # --- plumbing ----------------------------------------------------------------------------------------------

    async def _get(self, path: str, params: Mapping[str, str] | None, decode: Callable[[Any], T]) -> T:
        response = await self.transport.send(Request("GET", path, params=dict(params or {})))
        with self._decoding(response):
            return decode(response.json())

    @contextlib.contextmanager
    def _decoding(self, response: Response) -> Iterator[None]:
        """A body that does not fit becomes a `ResponseError` naming the status and the request id."""
        try:
            yield
        except ResponseError as exc:
            if exc.request_id is not None:
                raise
            raise ResponseError(
                exc.message, backend=self.name, status=response.status, request_id=response.request_id
            ) from None

    async def _written(
        self,
        response: Response,
        *,
        what: str,
        reference: str | None,
        decode: Callable[[Any], T],
        read_back: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """The result of a write smallinvoice accepted (2xx) or a lookup confirmed: decoded from the answer, else
        read back. A write that landed is never reported as a failure: an unreadable answer without a read-back,
        and a read-back that fails or finds nothing, are `WriteOutcomeUnknown` naming `reference`."""
        problem = "its answer was lost"
        if not response.confirmed_by_lookup:
            try:
                with self._decoding(response):
                    return decode(response.json())
            except ResponseError as exc:
                problem = f"its answer (HTTP {response.status}) could not be read ({exc.message})"
        if read_back is not None:
            return await outcomes.read_back(
                read_back, lambda read_problem: self._unknown_after_write(what, reference, f"{problem}; {read_problem}")
            )
        raise self._unknown_after_write(what, reference, problem)

    def _unknown_after_write(self, what: str, reference: str | None, problem: str) -> WriteOutcomeUnknown:
        return WriteOutcomeUnknown(
            f"{what}: the write was accepted or confirmed by a lookup, so it most likely landed, but {problem}; "
            "look it up by its reference before sending it again",
            backend=self.name,
            reference=reference,
        )

    async def _pages(self, path: str, params: Mapping[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every item of a list, page by page over `limit`/`offset` while `pagination.next` exists."""
        limit = self.settings.page_size
        offset = 0
        while True:
            query = {**(params or {}), "limit": str(limit), "offset": str(offset)}
            items, has_next = await self._get(path, query, wire.items_of)
            for item in items:
                yield item
            if not has_next or not items:
                return
            offset += limit

    def _id(self, item: Mapping[str, Any], what: str) -> str:
        """The server's id of `item` for a path: a whole number, else `ResponseError` (never a path it chose)."""
        return safety.server_id(item.get("id"), f"{what} id", backend=self.name)

    @staticmethod
    def _filter(condition: Mapping[str, Any]) -> str:
        return jsoncodec.dumps(dict(condition))

    async def _find_numbered(
        self, path: str, number: str, *, confirm_absent: bool = False, **params: str
    ) -> dict[str, Any] | None:
        """The item of the list at `path` whose own `number` is `number`, or None when there is none.

        The `filter` syntax is undocumented ([3P]: some filters "don't work properly"; comparators are prepended to
        the value), so its answer is checked, never trusted: only an item carrying exactly `number` counts. An
        empty answer means absent for a read; inside a write's look-up (`confirm_absent`), where "absent" would
        send the write again, it is confirmed by the bounded scan, so a filter applied too narrowly cannot cause a
        duplicate. An answer holding other numbers shows the filter was ignored or misapplied on this path; this
        look-up and every later one on the path then scan the unfiltered list (`_scan_numbered`).
        """
        safety.business_key(number, "number", backend=self.name)
        if path not in self._filter_unreliable and not number.startswith(c.FILTER_COMPARATOR_PREFIXES):
            query = {"filter": self._filter({"number": number}), "limit": str(self.settings.page_size), **params}
            items, _ = await self._get(path, query, wire.items_of)
            match = _numbered(items, number)
            if match is None and not items and confirm_absent:
                return await self._scan_numbered(path, number, params)
            if all(_numbered([item], number) is not None for item in items):
                return match  # the filter was honoured: the item, or nothing
            self._filter_unreliable.add(path)
            logger.warning(
                "smallinvoice: GET /%s ignored or misapplied filter={number}: numbers on it are looked up by scanning "
                "the list from now on (up to lookup_scan_limit=%d items per look-up)",
                path,
                self.settings.lookup_scan_limit,
            )
            if match is not None:
                return match
        return await self._scan_numbered(path, number, params)

    async def _scan_numbered(self, path: str, number: str, params: Mapping[str, str]) -> dict[str, Any] | None:
        """Client-side look-up: the unfiltered list page by page, at most `lookup_scan_limit` items.

        Cost: up to ceil(lookup_scan_limit / 200) requests per look-up (25 with the default 5000). A list longer
        than the bound without the number in it is a `ResponseError` (inside a write's look-up: the transport's
        `WriteOutcomeUnknown`), never a guessed "absent" that would resend a write or report a wrong `NotFound`.
        """
        bound = self.settings.lookup_scan_limit
        limit = min(c.MAX_PAGE_SIZE, bound)
        offset = 0
        while True:
            query = {**params, "limit": str(limit), "offset": str(offset)}
            items, has_next = await self._get(path, query, wire.items_of)
            match = _numbered(items, number)
            if match is not None:
                return match
            if not has_next or not items:
                return None
            offset += len(items)
            if offset >= bound:
                raise ResponseError(
                    f"cannot look up {number!r}: the number filter on /{path} is not usable (ignored or misapplied by "
                    f"the server, or the number starts like a comparator) and the list is longer than "
                    f"lookup_scan_limit={bound} items (raise the setting to scan further)",
                    backend=self.name,
                )

    # --- customers = contacts ----------------------------------------------------------------------------------

    async def _find_contact(self, number: str, *, confirm_absent: bool = False) -> dict[str, Any] | None:
        return await self._find_numbered("contacts", number, confirm_absent=confirm_absent)

    async def _contact_by_number(self, number: str) -> dict[str, Any] | None:
        """The contact `number`, reused from the ledger's contact cache (`contact_cache_ttl`); concurrent first
        asks of one number share one look-up. Absence is not cached (the contact may be created any moment)."""

        async def load() -> dict[str, Any]:
            found = await self._find_contact(number, confirm_absent=True)  # "absent" refuses the write
            if found is None:
                raise _Absent
            return found

        try:
            return await self._contacts.get(number, load)
        except _Absent:
            return None

    async def list_customers(self) -> AsyncIterator[Customer]:
        async for item in self._pages("contacts"):
            yield wire.decode_contact(item)

    async def get_customer(self, number: str) -> Customer:
        item = await self._find_contact(number)
        if item is None:
            raise NotFound(f"customer {number!r} not found", backend=self.name, status=404)
        return wire.decode_contact(item)

    async def upsert_customer(self, customer: Customer) -> Customer:
        return wire.decode_contact(await self._upsert_contact(customer))

    async def _upsert_contact(self, customer: Customer) -> dict[str, Any]:
        """Create first (`number` is unique: smallinvoice refuses a second contact with it); a refusal for the
        number means the contact exists, and it is updated — only what differs, its address through the
        address sub-resource (`ContactPUT` has no address). A customer that cannot be created (no address) is
        looked up first."""
        issues = wire.contact_create_issues(customer, self.settings.person_gender)
        refusal: Unprocessable | None = None
        if not issues:
            try:
                created = await self._create_contact(customer)
            except Unprocessable as exc:
                if not _number_taken(exc):
                    raise
                refusal = exc  # the number is in use: the contact exists
            else:
                self._contacts.put(customer.number, created)
                return created
        existing = await self._find_contact(customer.number, confirm_absent=True)
        if existing is None:
            # "in use" yet nowhere to be found: smallinvoice's own refusal is all there is to tell
            raise refusal if refusal is not None else ValidationError(issues, backend=self.name, model="Customer")
        updated = await self._update_contact(existing, customer)
        self._contacts.put(customer.number, updated)
        return updated

    async def _create_contact(self, customer: Customer) -> dict[str, Any]:
        """`POST /contacts` (a taken number is smallinvoice's `Unprocessable` naming `number`)."""
        body = wire.encode_contact(customer, create=True, gender=self.settings.person_gender)

        async def landed() -> bool:
            return await self._find_contact(customer.number, confirm_absent=True) is not None

        async def read_back() -> dict[str, Any] | None:
            return await self._find_contact(customer.number, confirm_absent=True)

        response = await self.transport.send(
            Request("POST", "contacts", json=body, reference=customer.number), lookup=landed
        )
        return await self._written(
            response, what=f"customer {customer.number!r}", reference=customer.number, decode=wire.item_of,
            read_back=read_back,
        )  # fmt: skip

    async def _update_contact(self, existing: dict[str, Any], customer: Customer) -> dict[str, Any]:
        """`PUT /contacts/{id}` with the changed fields, `PUT …/addresses/{id}` when the address changed."""
        what = f"customer {customer.number!r}"
        contact_id = self._id(existing, "contact")
        result = dict(existing)
        changes = wire.changed_fields(existing, wire.encode_contact(customer, create=False))
        if changes:

            async def read_contact() -> dict[str, Any] | None:
                return await self._find_contact(customer.number)

            response = await self.transport.send(Request("PUT", f"contacts/{contact_id}", json=changes))
            result = await self._written(
                response, what=what, reference=customer.number, decode=wire.item_of, read_back=read_contact
            )
        address_changes = _address_changes(existing, customer)
        if address_changes:
            address_id = safety.server_id(existing.get("main_address_id"), "address id", backend=self.name)
            response = await self.transport.send(
                Request("PUT", f"contacts/{contact_id}/addresses/{address_id}", json=address_changes)
            )
            result["main_address"] = await self._written(
                response, what=f"address of {what}", reference=customer.number, decode=wire.item_of
            )
        return result

    # --- invoices ----------------------------------------------------------------------------------------------

    async def _find_invoice(self, number: str, *, confirm_absent: bool = False) -> dict[str, Any] | None:
        return await self._find_numbered(
            "receivables/invoices", number, confirm_absent=confirm_absent, **{"with": "contact"}
        )

    async def _invoice_item(self, number: str, *, confirm_absent: bool = False) -> dict[str, Any]:
        """The invoice `number`, else `NotFound`; for a write (`confirm_absent`) only after the bounded scan."""
        item = await self._find_invoice(number, confirm_absent=confirm_absent)
        if item is None:
            raise NotFound(f"invoice {number!r} not found", backend=self.name, status=404)
        return item

    async def list_invoices(
        self,
        *,
        status: InvoiceStatus | None = None,
        since: _dt.date | None = None,
        until: _dt.date | None = None,
        customer_number: str | None = None,
    ) -> AsyncIterator[Invoice]:
        params = {"with": "contact"}
        if status is not None:
            params["filter"] = self._filter(wire.status_filter(status))
        contact_id: Any = None
        if customer_number is not None:
            safety.business_key(customer_number, "customer_number", backend=self.name)
            contact = await self._find_contact(customer_number)
            if contact is None:
                return
            contact_id = contact["id"]
        async for item in self._pages("receivables/invoices", params):
            # [3P] filtering by contact_id "does not work properly" server-side; dates: comparator syntax unknown
            if contact_id is not None and str(item.get("contact_id")) != str(contact_id):
                continue
            invoice = wire.decode_invoice(item)
            if invoice_matches(invoice, status=status, since=since, until=until):
                yield invoice

    async def get_invoice(self, number: str) -> Invoice:
        return wire.decode_invoice(await self._invoice_item(number))

    async def create_invoice(self, invoice: Invoice) -> Invoice:
        """One `POST` in the common case (the contact and the units come from the ledger's caches), then the
        status rule: an open invoice takes a second request, `change-status` to `S`, because smallinvoice
        creates every invoice as a draft; `status=InvoiceStatus.DRAFT` stays one request.

        The number is unique in smallinvoice, so the create is sent without looking first: a refusal for the
        number is resolved by looking the invoice up (same content → that invoice, brought to the asked status;
        different → `Conflict`), which also makes concurrent creates of one invoice idempotent."""
        contact = await self._invoice_contact(invoice)
        customer_number = str(contact.get("number") or invoice.customer_key)
        unit_ids = await self._unit_ids(invoice)
        grace = contact.get("payment_grace")
        days = grace if isinstance(grace, int) and not isinstance(grace, bool) else self.settings.payment_days
        due = invoice.due_date or invoice.issue_date + _dt.timedelta(days=days)
        body = wire.encode_invoice(
            invoice,
            contact_id=int(contact["id"]),
            contact_address_id=int(contact["main_address_id"]),
            unit_ids=unit_ids,
            currency=invoice.currency or contact.get("currency") or self.settings.currency,
            language=self.settings.language,
            due=due,
        )

        async def landed() -> bool:
            return await self._find_invoice(invoice.number, confirm_absent=True) is not None

        async def read_back() -> Invoice | None:
            item = await self._find_invoice(invoice.number, confirm_absent=True)
            return None if item is None else wire.decode_invoice(item, customer_number=customer_number)

        try:
            response = await self.transport.send(
                Request("POST", "receivables/invoices", json=body, reference=invoice.number), lookup=landed
            )
        except Unprocessable as exc:
            if _names_field(exc, "contact_id", "contact_address_id"):
                self._contacts.forget(customer_number)  # the cached contact is gone or changed
            if not _number_taken(exc):
                raise
            created = await self._existing_invoice(invoice, contact, unit_ids, customer_number, refusal=exc)
        else:
            created = await self._written(
                response,
                what=f"invoice {invoice.number!r}",
                reference=invoice.number,
                decode=lambda data: wire.decode_invoice(wire.item_of(data), customer_number=customer_number),
                read_back=read_back,
            )
            if response.confirmed_by_lookup:  # the lookup saw *an* invoice with this number: ours only if it matches
                self._check_landed(invoice, created, contact, unit_ids)
        return await self._with_create_status(invoice, created, customer_number)

    async def _invoice_contact(self, invoice: Invoice) -> dict[str, Any]:
        """The invoice's contact: from the ledger's contact cache when it is there and (for an embedded customer)
        holds what the invoice says, else looked up or upserted."""
        if invoice.customer is not None:
            cached = self._contacts.peek(invoice.customer.number)
            if cached is not None and not _contact_changes(cached, invoice.customer):
                return cached
            return await self._upsert_contact(invoice.customer)
        found = await self._contact_by_number(invoice.customer_key)
        if found is None:
            raise ValidationError(
                FieldError("customer_number", f"customer {invoice.customer_key!r} does not exist in smallinvoice"),
                backend=self.name,
                model="Invoice",
            )
        return found

    async def _existing_invoice(
        self,
        invoice: Invoice,
        contact: Mapping[str, Any],
        unit_ids: Sequence[int],
        customer_number: str,
        *,
        refusal: Unprocessable,
    ) -> Invoice:
        """smallinvoice refused the number as taken: the invoice holding it, if it is this one; else `Conflict`."""
        existing = await self._find_invoice(invoice.number, confirm_absent=True)
        if existing is None:
            raise refusal  # "in use" yet nowhere to be found: smallinvoice's own answer is all there is to tell
        decoded = wire.decode_invoice(existing, customer_number=customer_number)
        differences = _stored_differences(existing, decoded, invoice, contact, unit_ids)
        if differences:
            raise Conflict(
                f"invoice {invoice.number!r} already exists with different content ({', '.join(differences)})",
                backend=self.name,
                status=409,
                detail={"id": existing.get("id")},
            )
        return decoded  # a resend of the same invoice is not a second invoice

    async def _with_create_status(self, asked: Invoice, created: Invoice, customer_number: str) -> Invoice:
        """The status rule: a created invoice is open unless a draft was asked for (smallinvoice creates drafts)."""
        if asked.status is InvoiceStatus.DRAFT or created.status is not InvoiceStatus.DRAFT:
            return created
        invoice_id = self._id(created.raw or {}, "invoice")
        try:
            return await self._set_status(asked.number, invoice_id, c.STATUS_SENT, customer_number=customer_number)
        except AccountingError as exc:  # the draft stays: say so, and how to finish it
            raise WriteOutcomeUnknown(
                f"invoice {asked.number!r} was created (id {invoice_id}) but is still a draft: opening it failed "
                f"({exc}); send the same invoice again to open it (the resend finds this draft by its number and "
                "opens it, it never creates a second invoice)",
                backend=self.name,
                reference=asked.number,
                request_id=getattr(exc, "request_id", None),
            ) from exc

    def _check_landed(self, sent: Invoice, found: Invoice, contact: Mapping[str, Any], unit_ids: Sequence[int]) -> None:
        """After a lost answer a lookup found an invoice with our number. Matching, it is ours; not matching, it
        may be someone else's or ours as the backend reshaped it: unknown, never `Conflict` (a definite failure)."""
        differences = _stored_differences(found.raw or {}, found, sent, contact, unit_ids)
        if differences:
            raise WriteOutcomeUnknown(
                f"invoice {sent.number!r}: the answer to the create was lost and an invoice with this number "
                f"exists, but with other content ({', '.join(differences)}): it may be another invoice or ours as "
                "the backend stored it; look it up before sending it again",
                backend=self.name,
                reference=sent.number,
            )

    async def _unit_ids(self, invoice: Invoice) -> list[int]:
        ids: list[int] = []
        errors: list[FieldError] = []
        for index, line in enumerate(invoice.lines):
            if line.unit is not None and line.unit.strip().isdigit():
                ids.append(int(line.unit))
                continue
            units = await self.units()
            if line.unit is None:
                if self.settings.default_unit_id is not None:
                    ids.append(self.settings.default_unit_id)
                elif units:
                    ids.append(int(units[0]["id"]))
                else:
                    errors.append(FieldError(f"lines[{index}].unit", "smallinvoice lists no units"))
                continue
            wanted = line.unit.strip().casefold()
            match = [u for u in units if str(u.get("name", "")).casefold() == wanted]
            if match:
                ids.append(int(match[0]["id"]))
            else:
                names = ", ".join(str(u.get("name")) for u in units)
                errors.append(FieldError(f"lines[{index}].unit", f"unknown unit {line.unit!r}; known: {names}"))
        if errors:
            raise ValidationError(errors, backend=self.name, model="Invoice")
        return ids

    async def invoice_pdf(self, number: str) -> bytes:
        item = await self._invoice_item(number)
        response = await self.transport.send(Request("GET", f"receivables/invoices/{self._id(item, 'invoice')}/pdf"))
        if response.content_type != "application/pdf" and not response.body.startswith(b"%PDF"):
            raise ResponseError(
                f"expected a PDF, got {response.content_type or 'no content type'}",
                backend=self.name,
                status=response.status,
                request_id=response.request_id,
            )
        return response.body

    # --- by id (typed extras: the neutral interface is keyed by numbers) ----------------------------------------

    async def get_customer_by_id(self, contact_id: str | int) -> Customer:
        """`GET /contacts/{contactId}`: a contact by smallinvoice's own id."""
        path = f"contacts/{_caller_id(contact_id, 'contact_id')}"
        return await self._get(path, None, lambda data: wire.decode_contact(wire.item_of(data)))

    async def get_invoice_by_id(self, invoice_id: str | int) -> Invoice:
        """`GET /receivables/invoices/{invoiceId}?with=contact`: an invoice by smallinvoice's own id."""
        path = f"receivables/invoices/{_caller_id(invoice_id, 'invoice_id')}"
        return await self._get(path, {"with": "contact"}, lambda data: wire.decode_invoice(wire.item_of(data)))

    # --- invoice actions (typed extras: `ledger.adapter.send_invoice_by_email(...)`) ---------------------------

    async def cancel_invoice(self, number: str) -> Invoice:
        """Cancel (status `C`): the invoice stays, with status CANCELLED (`change-status`)."""
        return await self.change_invoice_status(number, InvoiceStatus.CANCELLED)

    async def delete_invoice(self, number: str) -> None:
        """`DELETE /receivables/invoices/{invoiceId}`: smallinvoice keeps it visible with status `D` (listed as
        CANCELLED); repeating it is harmless."""
        item = await self._invoice_item(number, confirm_absent=True)
        await self.transport.send(
            Request("DELETE", f"receivables/invoices/{self._id(item, 'invoice')}", reference=number)
        )

    async def send_invoice_by_email(
        self,
        number: str,
        *,
        recipients: Sequence[str | tuple[str, str]],
        subject: str,
        body: str,
        sender: str | None = None,
        receipt: bool | None = None,
    ) -> None:
        """`PATCH …/send-by-email`: `recipients` as addresses or (address, name) — smallinvoice requires a name, a
        bare address is sent with itself as the name; `sender` CO/U/S/CE."""
        listed = []
        for recipient in recipients:
            email, name = (recipient, None) if isinstance(recipient, str) else recipient
            listed.append({"email": email, "name": name or email})  # `name` is required: a bare address names itself
        payload: dict[str, Any] = {"subject": subject, "body": body, "recipients": listed}
        if sender is not None:
            payload["from"] = sender
        if receipt is not None:
            payload["receipt"] = receipt
        item = await self._invoice_item(number, confirm_absent=True)
        path = f"receivables/invoices/{self._id(item, 'invoice')}/send-by-email"
        await self.transport.send(Request("PATCH", path, json=payload, reference=number))

    async def change_invoice_status(
        self, number: str, status: InvoiceStatus | str, *, at: _dt.datetime | None = None
    ) -> Invoice:
        """`PATCH …/change-status` with a neutral status or a smallinvoice code (DR, S, P, PP, R1…, C)."""
        code = _NEUTRAL_TO_CODE[status] if isinstance(status, InvoiceStatus) else status
        if code not in c.ALL_STATUSES:
            raise ValidationError(FieldError("status", f"must be one of {', '.join(c.ALL_STATUSES)}"))
        item = await self._invoice_item(number, confirm_absent=True)
        contact = item.get("contact")
        customer_number = _text_of(contact.get("number")) if isinstance(contact, Mapping) else None
        return await self._set_status(number, self._id(item, "invoice"), code, customer_number=customer_number, at=at)

    async def _set_status(
        self, number: str, invoice_id: str, code: str, *, customer_number: str | None, at: _dt.datetime | None = None
    ) -> Invoice:
        """`PATCH …/change-status` (no `with`: the operation declares none; the contact number is the caller's)."""
        payload: dict[str, Any] = {"status": code}
        if at is not None:
            payload["date_time"] = at.strftime(c.DATETIME_FORMAT)
        response = await self.transport.send(
            Request(
                "PATCH",
                f"receivables/invoices/{invoice_id}/change-status",
                json=payload,
                reference=number,
                idempotent=True,  # setting a status twice has the same effect as once
            )
        )

        async def read_back() -> Invoice:
            return wire.decode_invoice(await self._invoice_item(number))

        return await self._written(
            response,
            what=f"status of invoice {number!r}",
            reference=number,
            decode=lambda data: wire.decode_invoice(wire.item_of(data), customer_number=customer_number),
            read_back=read_back,
        )

    # --- payments ----------------------------------------------------------------------------------------------

    async def list_payments(
        self,
        *,
        invoice_number: str | None = None,
        since: _dt.date | None = None,
        until: _dt.date | None = None,
    ) -> AsyncIterator[Payment]:
        if invoice_number is not None:
            safety.business_key(invoice_number, "invoice_number", backend=self.name)
            invoices = [await self._invoice_item(invoice_number)]
            sources: Any = _aiter(invoices)
        else:
            sources = self._pages("receivables/invoices")  # payments exist only per invoice
        async for invoice in sources:
            number = str(invoice.get("number") or invoice.get("id"))
            async for item in self._pages(f"receivables/invoices/{self._id(invoice, 'invoice')}/payments"):
                payment = wire.decode_payment(item, invoice_number=number, currency=invoice.get("currency"))
                if in_window(payment.date, since, until):
                    yield payment

    async def create_payment(self, payment: Payment) -> Payment:
        invoice = await self._find_invoice(payment.invoice_number, confirm_absent=True)
        if invoice is None:
            raise ValidationError(
                FieldError("invoice_number", f"invoice {payment.invoice_number!r} does not exist"),
                backend=self.name,
                model="Payment",
            )
        response = await self.transport.send(
            Request(
                "POST",
                f"receivables/invoices/{self._id(invoice, 'invoice')}/payments",
                json=wire.encode_payment(payment),
                reference=payment.invoice_number,
            )
        )
        return await self._written(  # no read-back: a payment has no key of its own to find it by
            response,
            what=f"payment to invoice {payment.invoice_number!r}",
            reference=payment.invoice_number,
            decode=lambda data: wire.decode_payment(
                wire.item_of(data), invoice_number=payment.invoice_number, currency=invoice.get("currency")
            ),
        )

    # --- configuration (typed extras for what the neutral API lacks) -------------------------------------------

    async def units(self) -> list[dict[str, Any]]:
        """`GET /catalog/configuration/units` (loaded once per ledger, however many creates ask at the same time)."""

        async def load() -> list[dict[str, Any]]:
            return [item async for item in self._pages("catalog/configuration/units")]

        return await self._units.get("units", load)

    async def bank_accounts(self) -> list[dict[str, Any]]:
        """`GET /configuration/bank-accounts`: the company's own accounts (not bank transactions)."""
        return [item async for item in self._pages("configuration/bank-accounts")]

    async def isrs(self) -> list[dict[str, Any]]:
        """`GET /receivables/configuration/isrs`: inpayment slip (ISR / QR) configurations."""
        return [item async for item in self._pages("receivables/configuration/isrs")]

    async def owner(self) -> dict[str, Any]:
        """`GET /auth/owner`: who the token belongs to."""
        return await self._get("auth/owner", None, wire.item_of)

    async def raw(self, method: str, path: str, **kwargs: Any) -> Response:
        """Any request relative to the base URL (``/v2``), through the same auth, limiter and retries."""
        return await super().raw(method, path.lstrip("/"), **kwargs)


def _caller_id(value: str | int, field: str) -> str:
    """An id the caller passed for a path: a whole number, else `ValidationError` naming `field`."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise ValidationError(FieldError(field, "must be smallinvoice's numeric id"), backend="smallinvoice")
    return text


class _Absent(Exception):
    """A look-up found nothing (not kept by the contact cache)."""


def _text_of(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _address_changes(stored: Mapping[str, Any], customer: Customer) -> dict[str, Any]:
    address = stored.get("main_address")
    wanted = wire.encode_address(customer.address) if customer.address is not None else {}
    return wire.changed_fields(address if isinstance(address, Mapping) else {}, wanted)


def _contact_changes(stored: Mapping[str, Any], customer: Customer) -> bool:
    """Whether `customer` says anything the `stored` contact does not hold (fields or address)."""
    return bool(wire.changed_fields(stored, wire.encode_contact(customer, create=False))) or bool(
        _address_changes(stored, customer)
    )


def _names_field(exc: Unprocessable, *keys: str) -> bool:
    return any(field.path in keys for field in exc.fields)


def _number_taken(exc: Unprocessable) -> bool:
    """A 422 naming the unique `number`: smallinvoice refuses a second record with a number in use."""
    return _names_field(exc, c.DUPLICATE_NUMBER_KEY)


def _numbered(items: Iterable[Mapping[str, Any]], number: str) -> dict[str, Any] | None:
    """The item whose own `number` is `number` (numbers may come back as JSON numbers)."""
    for item in items:
        if item.get("number") is not None and str(item["number"]) == number:
            return dict(item)
    return None


async def _aiter(items: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


#: Invoice fields compared only when the caller gave them (otherwise smallinvoice or the contact supplies them).
_OPTIONAL_INVOICE_FIELDS = ("due_date", "currency", "title", "notes", "internal_notes")


def _stored_differences(
    item: Mapping[str, Any], stored: Invoice, new: Invoice, contact: Mapping[str, Any], unit_ids: Sequence[int]
) -> list[str]:
    """`_invoice_differences`, and the customer: the stored `item`'s contact is compared by id."""
    differences = _invoice_differences(stored, new, unit_ids)
    if str(item.get("contact_id")) != str(contact.get("id")):
        differences.insert(0, "customer")
    return differences


def _invoice_differences(stored: Invoice, new: Invoice, unit_ids: Sequence[int]) -> list[str]:
    """The fields of `new` (as sent) that differ in the `stored` invoice of the same number — idempotent create:
    any difference is another invoice. Everything sent that smallinvoice stores is compared (the customer is
    compared by contact id by the caller); optional fields the caller left out are not."""
    differences = [name for name in ("issue_date", "prices_include_tax") if getattr(new, name) != getattr(stored, name)]
    differences += [
        name
        for name in _OPTIONAL_INVOICE_FIELDS
        if getattr(new, name) is not None and getattr(new, name) != getattr(stored, name)
    ]
    if len(new.lines) != len(stored.lines):
        return [*differences, "lines"]
    for index, (mine, theirs, unit_id) in enumerate(zip(new.lines, stored.lines, unit_ids, strict=True)):
        differences += [f"lines[{index}].{name}" for name in _line_differences(mine, theirs, unit_id)]
    return differences


def _line_differences(mine: InvoiceLine, theirs: InvoiceLine, unit_id: int) -> list[str]:
    pairs: dict[str, tuple[Any, Any]] = {
        "description": (mine.description, theirs.description),
        "quantity": (mine.quantity, theirs.quantity),
        "unit_price": (mine.unit_price, theirs.unit_price),
        "tax_rate": (mine.tax_rate or 0, theirs.tax_rate or 0),
        "discount_percent": (mine.discount_percent or 0, theirs.discount_percent or 0),
    }
    if mine.note is not None:
        pairs["note"] = (mine.note, theirs.note)
    if mine.item_number is not None:
        pairs["item_number"] = (mine.item_number, theirs.item_number)
    if mine.unit is not None:
        pairs["unit"] = (str(unit_id), theirs.unit)
    return [name for name, (a, b) in pairs.items() if a != b]
